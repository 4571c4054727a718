"""``diffusio curate | synthesize``: clean a dataset, or make a labelled synthetic one."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from diffusio.cli.args import (add_guide_options, add_watermark_options, guidance_float, positive_int, seed_int,
                               redraw_bars, watermark_choice)
from diffusio.cli.cluster import add_cluster_options, cluster
from diffusio.errors import UsageError


def register(sub) -> None:
    register_curate(sub)
    register_synthesize(sub)


def register_curate(sub) -> None:
    from diffusio.generative.trust.curate import NEAR_BITS, NEAR_DIFF, OUTLIER_Z

    p = sub.add_parser("curate", help="find duplicates and outliers in a dataset and write a cleaned copy",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="Example:\n  diffusio curate fashion-mnist -o cleaned/ --picture problems.png\n"
                              "  diffusio train --data cleaned/ --out runs/clean")
    p.add_argument("dataset", help="fashion-mnist, mnist5k, digits, or a folder of images / idx files")
    p.add_argument("-o", "--out", required=True, help="new folder for the cleaned copy (idx files + report.json)")
    p.add_argument("--near-bits", type=int, default=NEAR_BITS, help=f"pHash bits a near duplicate may differ in "
                   f"(default {NEAR_BITS})")
    p.add_argument("--near-diff", type=float, default=NEAR_DIFF, help="... and its largest relative pixel "
                   f"difference ||a - b|| / max(||a||, ||b||) (default {NEAR_DIFF})")
    p.add_argument("--outlier-z", type=float, default=OUTLIER_Z, help=f"robust z-score of an outlier (default {OUTLIER_Z})")
    p.add_argument("--keep-outliers", action="store_true", help="remove duplicates only")
    p.add_argument("--picture", default=None, help=".png of the near duplicates and the worst outliers")
    p.set_defaults(func=cmd_curate)


def cmd_curate(args) -> int:
    from diffusio.generative.trust.curate import curate_dataset

    report = curate_dataset(args.dataset, args.out, near_bits=args.near_bits, near_diff=args.near_diff,
                            outlier_z=args.outlier_z, keep_outliers=args.keep_outliers, picture=args.picture)
    out = Path(args.out)
    print(f"{args.dataset}: {report['images']} images; removed {report['removed']} "
          f"({sum(len(g) - 1 for g in report['exact_duplicates'])} exact copies, "
          f"{len(report['near_duplicates'])} near-duplicate pairs, {len(report['outliers'])} outliers); "
          f"kept {report['kept']}")
    print(f"wrote {out} (train on it with: diffusio train --data {out} ...); report: {out / 'report.json'}")
    if report["picture"]:
        print(f"wrote {report['picture']}")
    elif args.picture:
        print(f"no near duplicates or outliers, so no picture; {args.picture} not written")
    return 0


def register_synthesize(sub) -> None:
    p = sub.add_parser("synthesize", help="write a labelled synthetic dataset (.npz) from a class-conditioned model",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="Examples:\n  diffusio synthesize fashion --per-class 1000 -o synth.npz\n"
                              "  diffusio synthesize fashion-fast --per-class 500 --classes Bag,Coat -o bags.npz\n"
                              "  diffusio classifier --data synth.npz --out my-classifier")
    p.add_argument("model", help="shipped model name or run directory")
    p.add_argument("--per-class", type=positive_int("--per-class"), default=1000, help="images per class (default 1000)")
    p.add_argument("--classes", default=None, help="comma list of class names or indices (default: every class)")
    p.add_argument("-o", "--output", required=True, help=".npz: images (uint8), labels, class_names")
    p.add_argument("--steps", type=positive_int("--steps"), default=None)
    from diffusio.generative.pipeline import samplers

    p.add_argument("--sampler", choices=list(samplers()), default=None)
    p.add_argument("--guidance", type=guidance_float(), default=None,
                   help="classifier-free guidance (default: the model's synthesis setting, else its sampling one)")
    add_guide_options(p)
    p.add_argument("--seed", type=seed_int, default=0)
    add_watermark_options(p)
    add_cluster_options(p, threads=False)
    p.set_defaults(func=cmd_synthesize)


def cmd_synthesize(args) -> int:
    import time

    from diffusio.generative import Generator
    from diffusio.generative.evaluation.classifier import load_classifier
    from diffusio._io import check_output
    from diffusio.generative.trust.synthesize import check, save_npz, synthesis_settings, synthesize
    from diffusio.generative.trust.watermark import resolve_key

    if not args.output.lower().endswith(".npz"):
        raise UsageError(f"{args.output} should end in .npz")
    check_output(args.output)
    gen = Generator.load(args.model)
    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    start = time.time()
    with cluster(args) as client:
        data = synthesize(gen, args.per_class, classes=classes, steps=args.steps, sampler=args.sampler,
                          guidance=args.guidance, seed=args.seed, watermark=watermark_choice(args),
                          progress=sys.stderr.isatty(), client=client, autoguidance=args.autoguidance, guide=args.guide,
                          classifier_guidance=args.classifier_guidance, redraws=args.redraws,
                          redraw_below=redraw_bars(args))
    settings = synthesis_settings(gen, steps=args.steps, sampler=args.sampler, guidance=args.guidance,
                                  autoguidance=args.autoguidance, guide=args.guide,
                                  classifier_guidance=args.classifier_guidance, redraws=args.redraws,
                                  redraw_below=redraw_bars(args))
    meta = {"model": args.model, "per_class": args.per_class, "seed": args.seed, **settings,
            "watermarked": resolve_key(watermark_choice(args)) is not None}
    dataset = gen.model.config.get("data", {}).get("name")
    try:
        report = check(data, load_classifier(dataset))
        meta["check"] = report
    except UsageError:
        report = None  # no shipped classifier for this model's data: nothing to check against
    save_npz(args.output, data, meta)
    print(f"wrote {len(data['labels'])} images of {len(set(data['labels'].tolist()))} classes to {args.output} "
          f"in {time.time() - start:.0f}s")
    if report:
        print(f"the {dataset} classifier agrees with {100 * report['label_agreement']:.1f}% of the labels; "
              f"its predicted class mix vs uniform: chi2 = {report['chi2_vs_uniform']:.1f} (p = {report['p_value']:.3g})")
    return 0
