"""``diffusio audit memorization | bias``: check a model for copied training images and biased output."""

from __future__ import annotations

import argparse

from diffusio.cli.args import positive_int, seed_int
from diffusio.errors import UsageError


def register(sub) -> None:
    audit = sub.add_parser("audit", help="audit a model: memorisation of training images, class bias",
                           formatter_class=argparse.RawDescriptionHelpFormatter,
                           epilog="Examples:\n  diffusio audit memorization fashion --n 1000 --json mem.json "
                                  "--picture pairs.png\n  diffusio audit bias fashion --n 1000 --picture confusion.png\n"
                                  "  diffusio audit bias fashion --n 1000 --balance")
    kinds = audit.add_subparsers(dest="audit", metavar="KIND", required=True)
    for kind, helptext in (("memorization", "nearest training images of samples (Gu et al., Carlini et al.)"),
                           ("bias", "class mix of unconditional samples vs training; prompt confusion")):
        p = kinds.add_parser(kind, help=helptext)
        p.add_argument("model", help="shipped model name or run directory")
        p.add_argument("--n", type=positive_int("--n"), default=1000, help="samples to audit (default 1000)")
        p.add_argument("--seed", type=seed_int, default=0)
        p.add_argument("--steps", type=positive_int("--steps"), default=None)
        p.add_argument("--json", dest="json_out", default=None, help="write the report here")
        p.add_argument("--picture", default=None, help=".png: closest pairs (memorization) or confusion (bias)")
        if kind == "bias":
            p.add_argument("--balance", action="store_true",
                           help="steer unconditional generation to a uniform class mix, and report the result")
            p.add_argument("--per-prompt", type=positive_int("--per-prompt"), default=50)
        p.set_defaults(func=cmd_audit)
    register_watermark(sub)


def register_watermark(sub) -> None:
    wm = sub.add_parser("watermark", help="check images for diffusio's invisible watermark",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        epilog="Examples:\n  diffusio generate \"a bag\" -n 4 -o bags.png && diffusio watermark detect bags.png\n"
                               "  diffusio watermark detect photo.png --key my-secret --json report.json")
    kinds = wm.add_subparsers(dest="watermark", metavar="ACTION", required=True)
    p = kinds.add_parser("detect", help="is the image marked? yes/no with a confidence, per image")
    p.add_argument("images", nargs="+", help="PNG/JPEG images, grids written by diffusio generate, or .npy arrays")
    p.add_argument("--model", default="fashion",
                   help="the model that made them (a distilled student is checked with its teacher); default fashion")
    p.add_argument("--key", default=None, help="the key used to generate (default: $DIFFUSIO_WATERMARK_KEY or public)")
    p.add_argument("--json", dest="json_out", default=None, help="also write the per-image results here")
    p.set_defaults(func=cmd_watermark)


def cmd_watermark(args) -> int:
    from diffusio._io import atomic_save_json, check_output
    from diffusio.generative.trust.watermark import THRESHOLD, detect_files

    if args.json_out:
        if not args.json_out.lower().endswith(".json"):
            raise UsageError(f"{args.json_out} should end in .json")
        check_output(args.json_out)
    results = detect_files(args.images, model=args.model, key=args.key)
    for row in results:
        if "stamp" in row:
            st = row["stamp"]
            print(f"{row['image']}: invisible-watermark stamp {'yes' if st['marked'] else 'no'} "
                  f"({st['matched_bits']}/32 bits of the key; p = {st['p_value']:.2g})")
        elif row["marked"]:
            print(f"{row['image']}: yes (score {row['score']:.1f} > {THRESHOLD:.1f}; confidence 1 - {row['p_value']:.1g})")
        else:
            print(f"{row['image']}: no (score {row['score']:.1f} <= {THRESHOLD:.1f}; p = {row['p_value']:.2g}, "
                  "no evidence of the key)")
    marked = sum(r.get("marked", False) for r in results)
    checked = sum("marked" in r for r in results)
    if checked > 1:
        print(f"{marked} of {checked} images carry the watermark")
    if args.json_out:
        atomic_save_json(args.json_out, {"model": args.model, "threshold": THRESHOLD, "images": results})
        print(f"wrote {args.json_out}")
    return 0


def cmd_audit(args) -> int:
    from diffusio.generative.trust import audit
    from diffusio._io import atomic_save_json, check_output

    for path, suffix in ((args.json_out, ".json"), (args.picture, ".png")):
        if path:
            if not path.lower().endswith(suffix):
                raise UsageError(f"{path} should end in {suffix}")
            check_output(path)
    if args.audit == "memorization":
        report = audit.memorization_audit(args.model, args.n, seed=args.seed, steps=args.steps)
        print(f"memorisation audit of {args.n} samples of {args.model} against {report['training_images']} "
              f"training images ({report['dataset']}); test images as the control")
        print(f"{'space':<10}{'Gu d1/d2<1/3':>14}{'Carlini <1/3':>14}{'median d1':>11}   test control (Gu / Carlini)")
        for space in ("pixel", "features"):
            r, c = report[space], report[space + "_test_control"]
            print(f"{space:<10}{r['gu_fraction']:>14.3f}{r['carlini_fraction']:>14.3f}"
                  f"{r['median_nearest_distance']:>11.2f}   {c['gu_fraction']:.3f} / {c['carlini_fraction']:.3f}")
        if args.picture:
            audit.save_pairs_picture(report, args.picture)
    else:
        report = audit.bias_audit(args.model, args.n, seed=args.seed, steps=args.steps, balance=args.balance,
                                  per_prompt=args.per_prompt)
        what = "balanced (uniform target)" if args.balance else "unconditional"
        print(f"class mix of {args.n} {what} samples vs {'target' if args.balance else 'training'}: "
              f"chi2 = {report['chi2']:.1f}, p = {report['p_value']:.3g}")
        for name, got, want in zip(report["classes"], report["sample_mix"], report["target_mix"]):
            print(f"  {name:<12} {got:6.3f}  (target {want:.3f})")
        if "prompt_accuracy" in report:
            worst = min(report["prompt_accuracy"], key=report["prompt_accuracy"].get)
            print(f"prompt accuracy: worst {worst!r} {report['prompt_accuracy'][worst]:.2f}")
        if args.picture:
            if "confusion" not in report:
                raise UsageError("this model takes no prompts, so there is no confusion picture; drop --picture")
            audit.save_confusion_picture(report, args.picture)
    if args.json_out:
        atomic_save_json(args.json_out, {k: v for k, v in report.items() if not k.startswith("_")})
    for path in (args.json_out, args.picture):
        if path:
            print(f"wrote {path}")
    return 0
