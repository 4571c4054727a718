"""Running a case: its files written, the command run with a time bound, the outcome judged."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np

from .values import Case, png


PREPARED: dict[str, Path] = {}  # "model:tabular" -> a folder the harness made once


def prepare(kind: str, folder: Path) -> Path:
    """Make (once per process) the prepared inputs cases can name, e.g. a fitted tabular model."""
    if kind not in PREPARED:
        target = folder / kind.replace(":", "-")
        from diffusio.cli.main import main

        if kind == "model:tabular":
            assert main(["tabular", "fit", "wine", "--out", str(target), "--steps", "2", "--quiet"]) == 0
        elif kind == "model:phema":  # a training run with post-hoc EMA snapshots
            assert main(["train", "--data", "digits", "--out", str(target), "--steps", "2", "--batch-size", "2",
                         "--base", "8", "--mults", "1", "--attn-levels", "", "--every", "1", "--threads", "1",
                         "--posthoc-ema", "--quiet"]) == 0
        elif kind == "folder:images":
            target.mkdir(parents=True)
            for i in range(3):
                (target / f"{i}.png").write_bytes(png(np.full((28, 28), 60 * i + 20, np.uint8)))
        elif kind == "model:search":
            images_ = prepare("folder:images", folder)
            assert main(["search", "index", str(images_), "-o", str(target), "--quiet"]) == 0
        PREPARED[kind] = target
    return PREPARED[kind]


def materialize(case: Case, folder: Path, prepared_root: Path) -> tuple[list[str], dict[Path, str]]:
    """Write the case's files into ``folder``; the argv with paths filled in, and input digests."""
    import hashlib

    folder.mkdir(parents=True, exist_ok=True)
    for name, content in case.files.items():
        target = folder / name
        if isinstance(content, str):
            source = prepare(content, prepared_root)
            shutil.copytree(source, target) if source.is_dir() else shutil.copy2(source, target)
        else:
            target.write_bytes(content)
    argv = []
    for a in case.argv:
        if a.startswith("@"):
            a = str(folder / a[1:]) if a != "@" else str(folder)
        else:
            for flagged in ("=@",):
                if flagged in a:
                    flag, rest = a.split("=", 1)
                    a = f"{flag}={folder / rest[1:] if rest != '@' else folder}"
        argv.append(a)
    digests = {}
    for name in case.files:
        for path in sorted((folder / name).rglob("*")) if (folder / name).is_dir() else [folder / name]:
            if path.is_file():
                digests[path] = hashlib.sha256(path.read_bytes()).hexdigest()
    return argv, digests


def changed(digests: dict[Path, str]) -> list[str]:
    import hashlib

    return [str(p) for p, d in digests.items() if not p.is_file() or hashlib.sha256(p.read_bytes()).hexdigest() != d]


def verdict(case: Case, code: int | None, err: str, hang: bool, lost: list[str]) -> str:
    """One of: success, clean error, traceback, hang, exit 0 on invalid, input modified."""
    if hang:
        return "hang"
    if "Traceback" in err or code not in (0, 2, 130):
        return "traceback"
    if lost:
        return "input modified"
    if code == 0 and case.invalid:
        return "exit 0 on invalid"
    if code != 0 and not err.strip():
        return "traceback"  # an error without a message is as bad as a crash
    return "success" if code == 0 else "clean error"


class Hang(KeyboardInterrupt):
    """Raised by the alarm inside an in-process run that passed its time bound: a KeyboardInterrupt,
    so that the command stops its work the way Ctrl-C does (worker threads included)."""


def run_in_process(argv: list[str], bound: float) -> tuple[int | None, str, bool, float]:
    """``diffusio.cli.main.main(argv)`` with stdout/stderr captured and a time bound (SIGALRM):
    (exit code, stderr plus any traceback, hang, seconds)."""
    import contextlib
    import signal
    import time
    import traceback

    from diffusio.cli.main import main

    fired = []

    def on_alarm(*_):
        fired.append(True)
        raise Hang()

    out, err = io.StringIO(), io.StringIO()
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, bound)
    start, code, hang = time.monotonic(), None, False
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    except SystemExit as stop:  # argparse: 2 for a bad flag, 0 for --help
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 2)
    except Hang:
        hang = True
    except BaseException:  # noqa: BLE001 -- anything escaping main is a traceback for the user
        err.write(traceback.format_exc())
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    return code, err.getvalue(), hang or bool(fired), time.monotonic() - start
