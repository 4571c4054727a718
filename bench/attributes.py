"""Control by image features: requested vs measured rank for every attribute, and a sweep picture.

    python bench/attributes.py --model fashion-attr --per-cell 20 --threads 2 --picture docs/img/attributes.png
    python bench/attributes.py --attr-guidance 7,10,14,20 --per-cell 4   # compare attribute guidance

For each attribute, every class is generated at requested ranks 0.1, 0.3, 0.5, 0.7, 0.9 (the
other attributes left free); the rank each image came out at (its feature measured and ranked
among training images of its class) is compared with the request by Spearman's rho over all
images.  Class accuracy on the sweep is set beside the parent model's on the same labels.
``--attr-guidance`` repeats the sweep at several attribute guidance scales (the same seeds), one
table row per attribute and scale; the picture uses the model's default.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from diffusio.generative import Generator
from diffusio.generative.conditioning.attributes import SWEEP, attribute_control
from diffusio.generative.evaluation.classifier import load_classifier
from diffusio.generative.data.datasets import to_unit_range
from diffusio.generative.data.images import labelled_rows, save_images

SHOWN = {"brightness": "Coat", "width": "Trouser", "height": "Ankle boot"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="fashion-attr")
    ap.add_argument("--parent", default="fashion")
    ap.add_argument("--per-cell", type=int, default=20, help="images per class and requested value")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--picture", default="attributes.png")
    ap.add_argument("--attr-guidance", default=None,
                    help="comma-separated attribute guidance scales to compare (default: the model's)")
    args = ap.parse_args()
    scales = [float(v) for v in args.attr_guidance.split(",")] if args.attr_guidance else [None]
    torch.set_num_threads(args.threads)
    gen, parent = Generator.load(args.model), Generator.load(args.parent)
    clf = load_classifier("fashion-mnist")
    reports = {}
    for scale in scales:
        start = time.perf_counter()
        reports[scale] = attribute_control(gen, clf, args.per_cell, attr_guidance=scale)
        print(f"sweep at attribute guidance {scale or 'default'} done in {time.perf_counter() - start:.0f}s", flush=True)
    labels = np.repeat(np.arange(10), args.per_cell * 2)
    parent_acc, free_acc = (float((clf.predict(to_unit_range(g.generate(label=labels.tolist(), n=len(labels), seed=99)[:, None]))
                                   == labels).mean()) for g in (parent, gen))

    default = gen.defaults.get("attr_guidance", gen.defaults["guidance"])
    print(f"\n| attribute | attribute guidance | Spearman rho (n) | mean measured rank at requested "
          f"{', '.join(map(str, SWEEP))} | class accuracy on the sweep |")
    print("|---|---|---|---|---|")
    for name in gen.model.attributes.names:
        for scale, report in reports.items():
            r = report[name]
            print(f"| {name} | {default if scale is None else scale:g} | {r['spearman']:.3f} ({r['n']}) | "
                  f"{', '.join(f'{m:.2f}' for m in r['mean_measured'])} | {r['class_accuracy']:.3f} |")
    print(f"\nclass accuracy without attribute wishes: {args.model} {free_acc:.3f}, {args.parent} {parent_acc:.3f} "
          f"({len(labels)} images each)")

    rows, names = [], []
    for name in gen.model.attributes.names:
        cls = SHOWN.get(name, gen.class_names[0])
        row = [gen.generate(label=cls, n=1, attrs={name: v}, seed=7)[0] for v in np.linspace(0.05, 0.95, 8)]
        rows.append(np.stack(row))
        names.append(f"{cls}: {name} .05-.95")
    save_images(labelled_rows(rows, names, scale=3, label_width=210)[None], args.picture)
    print(f"picture: {args.picture}")


if __name__ == "__main__":
    main()
