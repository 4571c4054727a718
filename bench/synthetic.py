"""Does synthetic data help a classifier?  Real-only vs real + synthetic vs synthetic-only.

    python bench/synthetic.py --model fashion-fast --steps 4 --per-class 1000 --seeds 3 --threads 1

The same SmallCNN (the evaluation classifier's architecture, trained for a fixed number of steps
so every arm gets the same optimisation budget) is trained on
  (a) 100 real Fashion-MNIST training images per class,
  (b) those plus --per-class synthetic images per class,
  (c) the synthetic images only,
  (d) with ``--real-weight W``: (b) with every real image repeated W times, so that the few real
      images are not drowned by the synthetic ones (W = per-class / real-per-class gives each
      batch as many real images as synthetic ones, on average),
and scored on the 10,000 test images.  Each seed draws its own real subset and initialises its
own network; the synthetic set is made once (seed 0) with `diffusio synthesize`'s code path.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from diffusio.generative import Generator
from diffusio.generative.evaluation.classifier import fit_classifier
from diffusio.generative.data.datasets import load_dataset, to_unit_range
from diffusio.generative.trust.synthesize import synthesize


def real_subset(ds, per_class: int, seed: int):
    rng = np.random.default_rng(seed)
    idx = np.concatenate([rng.choice(np.flatnonzero(ds.labels == c), per_class, replace=False)
                          for c in range(len(ds.class_names))])
    return ds.images[idx], ds.labels[idx]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="fashion-fast")
    ap.add_argument("--steps", type=int, default=4, help="sampling steps")
    ap.add_argument("--per-class", type=int, default=1000, help="synthetic images per class")
    ap.add_argument("--real-per-class", type=int, default=100)
    ap.add_argument("--train-steps", type=int, default=1500, help="classifier optimisation steps (batch 128)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--guidance", type=float, default=None, help="sampling guidance (default: the model's)")
    ap.add_argument("--autoguidance", type=float, default=None, help="autoguidance scale (default: the model's)")
    ap.add_argument("--guide", default=None, help="the autoguidance guide model (default: the model's)")
    ap.add_argument("--synthetic", default=None, metavar="NPZ",
                    help="use this set from `diffusio synthesize` instead of sampling one (--model etc. unused)")
    ap.add_argument("--real-weight", type=int, default=0, help="add arm (d): real images repeated this many times")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    train, test = load_dataset("fashion-mnist"), load_dataset("fashion-mnist", "test")
    start = time.perf_counter()
    if args.synthetic:
        made = load_dataset(args.synthetic)  # already in [-1, 1], NCHW
        sx, sy = made.images, made.labels
        print(f"read {len(made.labels)} synthetic images from {args.synthetic}", flush=True)
    else:
        synth = synthesize(Generator.load(args.model), args.per_class, steps=args.steps, seed=0,
                           guidance=args.guidance, autoguidance=args.autoguidance, guide=args.guide)
        print(f"synthesised {len(synth['labels'])} images with {args.model} at {args.steps} steps, guidance "
              f"{args.guidance or 'default'}, autoguidance {args.autoguidance or 'default'} "
              f"in {time.perf_counter() - start:.0f}s", flush=True)
        sx, sy = to_unit_range(synth["images"][:, None]), synth["labels"]

    per = len(sy) // len(np.unique(sy))  # synthetic images per class
    results: dict[str, list[float]] = {}
    for seed in range(args.seeds):
        rx, ry = real_subset(train, args.real_per_class, seed)
        arms = {f"(a) real only, {args.real_per_class}/class": (rx, ry),
                f"(b) real + synthetic {per}/class": (np.concatenate([rx, sx]), np.concatenate([ry, sy])),
                f"(c) synthetic only, {per}/class": (sx, sy)}
        if args.real_weight:
            w = args.real_weight
            arms[f"(d) real x{w} + synthetic {per}/class"] = (np.concatenate([np.repeat(rx, w, 0), sx]),
                                                          np.concatenate([np.repeat(ry, w), sy]))
        for name, (x, y) in arms.items():
            clf = fit_classifier(x, y, train.class_names, name, steps=args.train_steps, seed=seed)
            acc = float((clf.predict(test.images) == test.labels).mean())
            results.setdefault(name, []).append(acc)
            print(f"seed {seed} {name}: test accuracy {acc:.4f}", flush=True)

    print(f"\n| training data | test accuracy, mean ± sd over {args.seeds} seeds | per seed |")
    print("|---|---|---|")
    for name, accs in results.items():
        print(f"| {name} | {np.mean(accs):.4f} ± {np.std(accs, ddof=1) if len(accs) > 1 else 0:.4f} | "
              f"{', '.join(f'{a:.4f}' for a in accs)} |")
    base = np.array(next(iter(results.values())))
    for name, accs in list(results.items())[1:]:
        gain = np.array(accs) - base
        print(f"{name} vs (a): {100 * gain.mean():+.2f} points (per seed: {', '.join(f'{100 * g:+.2f}' for g in gain)})")


if __name__ == "__main__":
    main()
