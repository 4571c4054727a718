"""``diffusio molecules train | generate | evaluate``: drug-like molecules by masked diffusion."""

from __future__ import annotations

import argparse

from diffusio._precision import BF16_CHOICES
from diffusio.cli.args import add_cooldown_option, add_run_options, non_negative_float, positive_int, seed_int
from diffusio.errors import UsageError


def register(sub) -> None:
    p = sub.add_parser("molecules", help="design molecules: train on MOSES, generate SMILES, MOSES metrics",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="Example:\n  diffusio molecules generate -n 1000 -o mols.csv --picture mols.png\n"
                              "  diffusio molecules generate -n 500 --condition \"qed>0.8\" -o drug_like.csv\n"
                              "  diffusio molecules evaluate mols.csv --picture properties.png\n"
                              "  diffusio molecules train --out runs/moses --minutes 150   (then --resume)")
    mol = p.add_subparsers(dest="molecules_command", metavar="COMMAND")
    register_train(mol)
    register_generate(mol)
    register_evaluate(mol)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def register_train(sub) -> None:
    p = sub.add_parser("train", help="train a masked-diffusion model on MOSES (checkpoints; --resume continues)")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--data", default=None, help="a SMILES file instead of the MOSES training split")
    p.add_argument("--limit", type=positive_int("--limit"), default=300_000,
                   help="training molecules drawn from the split (default 300,000)")
    p.add_argument("--steps", type=positive_int("--steps"), default=20_000)
    p.add_argument("--width", type=positive_int("--width"), default=None, help="default 192")
    p.add_argument("--depth", type=positive_int("--depth"), default=None, help="default 4")
    p.add_argument("--batch-size", type=positive_int("--batch-size"), default=256)
    p.add_argument("--init", default=None,
                   help="continue a trained model (shipped name or run folder): its weights, tokens and size")
    add_cooldown_option(p)
    add_run_options(p, every=250)
    p.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    from diffusio.molecules.files import train_file

    size = {k: v for k, v in (("width", args.width), ("depth", args.depth)) if v is not None}
    if size and args.init:
        raise UsageError(f"--init {args.init} brings its own size; leave out --{' and --'.join(size)}")
    model = train_file(args.out, data=args.data, limit=args.limit, resume=args.resume, seed=args.seed, init=args.init,
                       steps=args.steps, cooldown=args.cooldown, minutes=args.minutes, batch_size=args.batch_size, every=args.every,
                       quiet=args.quiet, **size)
    print(f"trained {model.run.step:,} steps ({model.run.wall / 60:.1f} min); {len(model.vocab)} tokens, up to "
          f"{model.length} per molecule ({model.dropped} molecules left out: longer"
          f"{', or with a token the --init model lacks' if args.init else ''}); model in {args.out}")
    return 0


def register_generate(sub) -> None:
    p = sub.add_parser("generate", help="generate molecules: CSV of SMILES with QED, logP, weight")
    p.add_argument("-n", type=positive_int("-n"), default=1000)
    p.add_argument("--model", default=None, help="run folder or shipped model (default moses-small)")
    p.add_argument("--condition", default=None, help='property range, e.g. "qed>0.8", "logp<3", "250<weight<350"')
    p.add_argument("--guidance", type=non_negative_float("--guidance", 20), default=None,
                   help="classifier-free guidance for --condition, in [0, 20]")
    p.add_argument("--steps", type=positive_int("--steps"), default=None, help="reveal steps")
    p.add_argument("--sampler", choices=("confident", "random", "remask"), default=None,
                   help="which masked positions to reveal first: those the network is surest of, or any; "
                        "remask: surest first, then redraw the least sure (default: the model's)")
    p.add_argument("--bf16", choices=BF16_CHOICES, default=None,
                   help="the network in bfloat16 (default: the model's; auto: where the CPU has AVX-512 BF16 or AMX)")
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("-o", "--output", required=True, help=".csv to write")
    p.add_argument("--picture", default=None, help=".png grid of the first 24 molecules, drawn by RDKit")
    p.add_argument("--force", action="store_true", help="overwrite an existing -o")
    p.set_defaults(func=cmd_generate)


def cmd_generate(args) -> int:
    from diffusio.molecules.files import generate_file

    table = generate_file(args.n, args.output, model=args.model, condition=args.condition, guidance=args.guidance,
                          steps=args.steps, seed=args.seed, picture=args.picture, force=args.force, bf16=args.bf16,
                          sampler=args.sampler)
    valid = (table.smiles != "").mean()
    print(f"wrote {len(table):,} molecules to {args.output} ({valid:.1%} valid, {table.smiles.nunique():,} distinct)")
    if args.condition:
        from diffusio.molecules.properties import parse_condition

        name, lo, hi = parse_condition(args.condition)
        print(f"{table[name].between(lo, hi).mean():.1%} have {args.condition}")
    if args.picture:
        print(f"wrote {args.picture}")
    return 0


def register_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="the MOSES metrics for any SMILES file (valid, unique, novelty, FCD, ...)")
    p.add_argument("smiles", help="a .csv with a SMILES column, or one SMILES per line")
    p.add_argument("--reference-size", type=positive_int("--reference-size"), default=10_000,
                   help="MOSES test molecules to compare with (default 10,000)")
    p.add_argument("--no-fcd", action="store_true", help="skip the Frechet ChemNet Distance (the slow part)")
    p.add_argument("-o", "--output", default=None, help=".json of the metrics")
    p.add_argument("--picture", default=None, help=".png of property histograms against the MOSES test set")
    p.add_argument("--seed", type=seed_int, default=0)
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    from diffusio.molecules.files import evaluate_file, format_metrics

    result = evaluate_file(args.smiles, reference_size=args.reference_size, fcd=not args.no_fcd, seed=args.seed,
                           output=args.output, picture=args.picture)
    if result["invalid_lines"]:
        print(f"{len(result['invalid_lines'])}+ invalid SMILES, counted as invalid (lines "
              f"{', '.join(map(str, result['invalid_lines'][:5]))} ...)")
    print(format_metrics(result))
    for path in (args.output, args.picture):
        if path:
            print(f"wrote {path}")
    return 0
