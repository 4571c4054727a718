"""Figure helpers shared by every part of diffusio: an Agg figure and an atomic PNG write."""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from diffusio._io import atomic_path


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
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    return path
