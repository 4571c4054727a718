"""``diffusio tabular fit | sample | report``: synthetic tables."""

from __future__ import annotations

import argparse
import sys

from diffusio._precision import BF16_CHOICES
from diffusio.cli.args import (add_cooldown_option, add_run_options, guidance_float, interval, non_negative_float,
                               non_negative_int, positive_int, seed_int)

TABLES_HELP = "a CSV file, or a bundled table: breast-cancer, wine, diabetes, credit, churn, diamonds"


def register(sub) -> None:
    p = sub.add_parser("tabular", help="synthetic tables: fit a diffusion model to a CSV, sample rows, report",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="Example:\n  diffusio tabular fit credit --out runs/credit --minutes 5\n"
                              "  diffusio tabular sample runs/credit -n 10000 -o synth.csv --condition Status=bad\n"
                              "  diffusio tabular report runs/credit --real credit -o report.html")
    tab = p.add_subparsers(dest="tabular_command", metavar="COMMAND")
    register_fit(tab)
    register_sample(tab)
    register_report(tab)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def register_fit(sub) -> None:
    p = sub.add_parser("fit", help="fit a table diffusion model (checkpoints as it goes; --resume continues)")
    p.add_argument("data", help=TABLES_HELP)
    p.add_argument("--out", required=True, help="run folder: config.json, model.safetensors, training state")
    p.add_argument("--target", default=None, help="the column to predict; a categorical one can be conditioned on "
                   "exactly (default for a bundled table: its usual target)")
    p.add_argument("--steps", type=positive_int("--steps"), default=None,
                   help="training steps (default: 2,700 under 1,000 rows, else about 600 passes over "
                        "the rows, 0.6 a row, within 6,000-24,000)")
    p.add_argument("--width", type=positive_int("--width"), default=128, help="MLP width (default 128)")
    p.add_argument("--depth", type=positive_int("--depth"), default=3, help="residual blocks (default 3)")
    p.add_argument("--mix", type=non_negative_float("--mix", 1.0), default=None,
                   help="share of training rows whose groups of correlated columns come from another row of the "
                        "same class (TabCutMixPlus: keeps a small table from being learned by heart; 0: off; "
                        "default: the model's)")
    p.add_argument("--no-derive", action="store_true",
                   help="learn every column, even one that is an exact rule of another (default: such a column, "
                        "like a charge that is minutes times a tariff, is recomputed from its source)")
    p.add_argument("--no-relate", action="store_true",
                   help="learn every column as it is, even one that a law of others nearly gives (default: such a "
                        "column, like a depth that is 100 z / mean(x, y), is learned as what the law leaves over)")
    p.add_argument("--no-lookup", action="store_true",
                   help="keep every drawn number, even in a column that categorical columns determine (default: "
                        "such a column, like a flight's distance set by its route, is looked up after sampling)")
    p.add_argument("--no-label-check", action="store_true",
                   help="fit no label check (default, with a categorical target: a booster of the target from the "
                        "other columns, which `sample` uses to draw again rows that do not look like their class)")
    add_cooldown_option(p)
    add_run_options(p, every=500)
    p.set_defaults(func=cmd_fit)


def cmd_fit(args) -> int:
    from diffusio.tabular.files import fit_file

    model = fit_file(args.data, args.out, target=args.target, steps=args.steps, minutes=args.minutes, seed=args.seed,
                     resume=args.resume, quiet=args.quiet, width=args.width, depth=args.depth, every=args.every,
                     cooldown=args.cooldown, derive=not args.no_derive, label_check=not args.no_label_check,
                     relate=not args.no_relate, lookup=not args.no_lookup, **({} if args.mix is None else {"mix": args.mix}))
    for rule in model.derived:
        print(f"recomputed from its source after sampling: {rule}")
    for rel in model.relations:
        print(f"learned as what a law leaves over: {rel}")
    for rule in model.lookups:
        print(f"looked up after sampling: {rule}")
    print(f"fitted {len(model.columns)} columns (target: {model.target_name}) in {model.run.step:,} steps, "
          f"{model.run.wall / 60:.1f} min; model in {args.out}")
    return 0


def register_sample(sub) -> None:
    p = sub.add_parser("sample", help="write synthetic rows as CSV")
    p.add_argument("model", help="a folder written by `diffusio tabular fit`")
    p.add_argument("-n", type=positive_int("-n"), default=1000, help="rows (default 1000)")
    p.add_argument("-o", "--output", required=True, help=".csv to write")
    p.add_argument("--condition", default=None, help="COLUMN=VALUE every row takes (a categorical column)")
    p.add_argument("--guidance", type=guidance_float(), default=None, help="classifier-free guidance on the target's "
                   "class (default: the model's, 1 = plain conditional)")
    p.add_argument("--guidance-interval", type=interval, default=None, metavar="LO,HI",
                   help="guide only at noise levels in (LO, HI], plain conditional elsewhere (e.g. 1,10; all: "
                        "every level); default: the model's")
    p.add_argument("--bf16", choices=BF16_CHOICES, default=None,
                   help="the network in bfloat16 (default: the model's; auto: where the CPU has AVX-512 BF16 or AMX)")
    p.add_argument("--redraws", type=non_negative_int("--redraws"), default=None, metavar="N",
                   help="draw again, up to N times, each row the model's label check finds unlikely for its class "
                        "(same class, new noise; the best try is kept); 0 = never (default: the model's, 4)")
    p.add_argument("--redraw-below", type=non_negative_float("--redraw-below", 1.0), default=None, metavar="P",
                   help="redraw every row whose own class the check gives a probability under P (default: per class, only "
                        "as many rows as make the table less recognisable than the real one)")
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--force", action="store_true", help="overwrite an existing -o")
    p.set_defaults(func=cmd_sample)


def cmd_sample(args) -> int:
    from diffusio.tabular.files import sample_file

    rows, redrawn = sample_file(args.model, args.n, args.output, condition=args.condition, seed=args.seed,
                                force=args.force, guidance=args.guidance, guidance_interval=args.guidance_interval,
                                bf16=args.bf16, redraws=args.redraws, redraw_below=args.redraw_below,
                                progress=sys.stderr.isatty())
    print(f"wrote {len(rows):,} rows x {rows.shape[1]} columns to {args.output}")
    if redrawn["redrawn"]:
        print(f"label check: {redrawn['redrawn']:,} of {redrawn['rows']:,} drawn rows were drawn again; "
              f"{redrawn['under_bar']:,} still under the bar after the last try (each kept as its best try)")
    return 0


def register_report(sub) -> None:
    p = sub.add_parser("report", help="HTML report: quality, detection, ML efficacy, privacy, pictures")
    p.add_argument("model", help="a folder written by `diffusio tabular fit`")
    p.add_argument("--real", required=True, help="the table the model was fitted on (" + TABLES_HELP + ")")
    p.add_argument("--holdout", default=None, help="CSV of real rows the model never saw (enables ML efficacy "
                   "and the DCR privacy check)")
    p.add_argument("-o", "--output", required=True, help=".html to write")
    p.add_argument("-n", type=positive_int("-n"), default=None, help="synthetic rows (default: as many as --real, "
                   "at most 50,000)")
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--force", action="store_true", help="overwrite an input given as -o")
    p.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    from diffusio.tabular.files import report_file

    scores = report_file(args.model, args.real, args.output, holdout=args.holdout, n=args.n, seed=args.seed,
                         force=args.force)
    q = scores["quality"]
    line = f"quality {q['score']:.3f}, detection AUC {scores['detection_auc']:.3f}"
    if "ml_efficacy" in scores:
        line += f", ML efficacy {scores['ml_efficacy']['ratio']:.3f} of real"
    if "dcr" in scores:
        line += f", DCR check {'passed' if scores['dcr']['passed'] else 'FAILED'}"
    print(line)
    print(f"wrote {args.output}")
    return 0
