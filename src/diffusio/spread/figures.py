"""Shared figure helpers for the spread applications: an Agg figure and an atomic PNG write."""

from __future__ import annotations

import os
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def figure(width: float = 7.0, height: float = 4.2, ncols: int = 1) -> Iterator:
    """A matplotlib (Agg) figure and axes, closed on exit.

    Examples
    --------
    >>> with figure() as (fig, ax):
    ...     _ = ax.plot([0, 1], [0, 1])
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, ncols, figsize=(width, height), dpi=120, squeeze=True)
    try:
        yield fig, ax
    finally:
        plt.close(fig)


def save(fig, path: str | os.PathLike) -> Path:
    """Write ``fig`` to ``path`` as PNG through a temporary file, so a failure never clobbers ``path``."""
    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # colour bars spanning panels are not tight_layout compatible
        fig.tight_layout()
    handle, temp = tempfile.mkstemp(suffix=".png", dir=path.parent if str(path.parent) else ".")
    os.close(handle)
    try:
        fig.savefig(temp, format="png")
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise
    return path
