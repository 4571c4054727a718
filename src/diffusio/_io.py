"""Writing files safely: one copy of the atomic-write rule for the whole package.

Every output goes to a temporary file in the target's folder, is flushed to disk, then renamed
over the target in one step, so a reader (or a crash) never sees half a file and a failure never
clobbers what was there.  The file gets the mode a plain ``open`` would give it (0666 less the
umask), not ``mkstemp``'s private 0600.

>>> import tempfile, pathlib
>>> target = pathlib.Path(tempfile.mkdtemp()) / "hello.txt"
>>> with atomic_path(target) as tmp:
...     _ = tmp.write_text("hi")
>>> target.read_text()
'hi'
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from diffusio.errors import UsageError


def _read_umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it: do it once, before any threads start
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_read_umask()  # what a plain open() would give a new file


def check_output(path: str | os.PathLike, *, inputs: tuple = (), force: bool = False,
                 suffixes: tuple[str, ...] | None = None, flag: str = "-o") -> Path:
    """The one check of an output path, before any work: its folder exists and is writable, it
    is not a folder, it has one of ``suffixes``, and it is not one of the ``inputs`` (overwriting an
    input needs ``force``).

    >>> import tempfile, pathlib
    >>> source = pathlib.Path(tempfile.mkdtemp()) / "in.png"
    >>> _ = source.write_bytes(b"pixels")
    >>> check_output(source, inputs=(source,))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    diffusio.errors.UsageError: -o .../in.png is also an input: writing it would destroy the input; ...
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if suffixes and path.suffix.lower() not in suffixes:
        raise UsageError(f"{flag} {path} must end in {' or '.join(suffixes)}")
    if not parent.is_dir():
        raise UsageError(f"cannot write {path}: folder {parent} does not exist; create it or choose another {flag}")
    if path.is_dir():
        raise UsageError(f"cannot write {path}: it is a folder; give a file name such as {path / ('out' + (suffixes or ('.png',))[0])}")
    if not force and path.exists() and any(Path(i).exists() and os.path.samefile(i, path) for i in inputs if i):
        raise UsageError(f"{flag} {path} is also an input: writing it would destroy the input; choose another "
                         f"{flag}, or add --force to overwrite it")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"cannot write {path}: permission denied; choose a writable {flag}")
    return path


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.",
                                   suffix=suffix)
    except OSError as err:
        raise UsageError(f"cannot write {path}: {err.strerror or err}; choose another output") from None
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)
        try:
            os.replace(tmp, path)
        except OSError as err:
            raise UsageError(f"cannot write {path}: {err.strerror or err}; choose another output") from None
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_save_json(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as indented JSON atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a rename inside folder ``path`` durable (no-op where folders cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


MAX_CSV_BYTES = 2 << 30  # 2 GiB: pandas needs several times a file's size in memory


def read_csv(path: str | os.PathLike, *, fix: str = "save it as UTF-8 CSV with a header row", **options):
    """A user's CSV file as a DataFrame, or one :class:`UsageError` naming the problem and ``fix``:
    missing, empty, too large, binary (NUL bytes: pandas versions disagree on what they make of
    those, so they are refused here), or unparseable.

    >>> import tempfile, pathlib
    >>> bad = pathlib.Path(tempfile.mkdtemp()) / "x.csv"
    >>> _ = bad.write_bytes(b"\\x00\\x01garbage\\xff")
    >>> read_csv(bad)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    diffusio.errors.UsageError: cannot read .../x.csv as CSV: it holds binary bytes, not text; save it as ...
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path} is not a file; {fix}")
    size = path.stat().st_size
    if size == 0:
        raise UsageError(f"{path} is empty; {fix}")
    if size > MAX_CSV_BYTES:
        raise UsageError(f"{path} is {size / 2**30:.1f} GiB; diffusio reads CSV files up to 2 GiB -- sample the rows first")
    with open(path, "rb") as fh:
        if b"\x00" in fh.read(1 << 16):
            raise UsageError(f"cannot read {path} as CSV: it holds binary bytes, not text; {fix}")
    try:
        return pd.read_csv(path, encoding="utf-8", **options)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as err:
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise UsageError(f"cannot read {path} as CSV ({first}); {fix}") from None
