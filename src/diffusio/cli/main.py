"""Entry point of the ``diffusio`` command.

Each command group lives in its own module and exposes ``register(subparsers)``;
a registered sub-command sets ``func`` to a callable taking the parsed args and
returning an exit code.  Errors a user can fix are raised as :class:`UsageError`
and printed as one line, with exit status 2.
"""

from __future__ import annotations

import argparse
import sys

from diffusio.errors import UsageError


def build_parser() -> argparse.ArgumentParser:
    from diffusio.cli import datasets, deploy, editing, generative, spread, studio, trust

    parser = argparse.ArgumentParser(
        prog="diffusio",
        description="Diffusion models: generate images from text, and simulate spread on networks.",
        epilog='Example: diffusio generate "a leather ankle boot" -n 16 --seed 0 -o boots.png',
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    generative.register(sub)
    editing.register(sub)
    deploy.register(sub)
    trust.register(sub)
    datasets.register(sub)
    spread.register(sub)
    studio.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UsageError as err:
        print(f"diffusio: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("diffusio: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
