"""Mean curves with confidence bands, written to PNG without a display."""

from __future__ import annotations

import os
from pathlib import Path

from diffusio.spread.figures import figure, save
from diffusio.spread.simulate import SpreadResult


def plot_curves(result: SpreadResult, path: str | os.PathLike, *, confidence: float = 0.95,
                title: str | None = None) -> Path:
    """Draw the mean count of every state over time with its confidence band.

    The image is written to a temporary file first and moved into place, so a
    failure never leaves a half-written or clobbered ``path``.

    Examples
    --------
    >>> import tempfile, pathlib, networkx as nx
    >>> from diffusio import spread
    >>> result = spread.simulate(nx.karate_club_graph(), spread.SIR(beta=0.1, gamma=0.1), seeds=[0], trials=20)
    >>> out = plot_curves(result, pathlib.Path(tempfile.mkdtemp()) / "sir.png")
    >>> out.stat().st_size > 0
    True
    """
    path = Path(path)
    summary = result.summary(confidence)
    x_name = "time" if result.model.continuous else "step"
    with figure() as (fig, ax):
        for state in result.states:
            line, = ax.plot(summary[x_name], summary[f"{state}_mean"], label=state)
            ax.fill_between(summary[x_name], summary[f"{state}_lower"], summary[f"{state}_upper"],
                            color=line.get_color(), alpha=0.25, linewidth=0)
        ax.set_xlabel(x_name)
        ax.set_ylabel("nodes")
        model_name = type(result.model).__name__
        ax.set_title(title or f"{model_name} on {result.graph.name or 'graph'}: mean of {result.trials} trials, "
                              f"{confidence:.0%} CI")
        ax.legend()
        return save(fig, path)
