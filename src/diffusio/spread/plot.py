"""Mean curves with confidence bands, written to PNG without a display."""

from __future__ import annotations

import os
from pathlib import Path

from diffusio.figures import figure, save
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


def plot_final_states(result: SpreadResult, path: str | os.PathLike, *, trial: int = 0, positions=None,
                      max_nodes: int = 5000) -> Path:
    """Draw the graph with every node coloured by its state at the end of one trial.

    Needs ``simulate(..., final_states=True)``.  Positions: given (``(nodes, 2)``), else a
    seeded spring layout (graphs up to ``max_nodes`` nodes).

    Examples
    --------
    >>> import tempfile, pathlib, networkx as nx
    >>> from diffusio import spread
    >>> result = spread.simulate(nx.karate_club_graph(), spread.SIR(beta=0.3, gamma=0.1), seeds=[0],
    ...                          trials=2, seed=0, final_states=True)
    >>> plot_final_states(result, pathlib.Path(tempfile.mkdtemp()) / "final.png").suffix
    '.png'
    """
    import networkx as nx
    import numpy as np

    from diffusio.errors import UsageError

    states = result._final
    if states is None:
        raise UsageError("final node states were not recorded; call simulate(..., final_states=True)")
    graph = result.graph
    if positions is None:
        if graph.n_nodes > max_nodes:
            raise UsageError(f"{graph.n_nodes} nodes is too many to lay out (limit {max_nodes}); pass positions")
        layout = nx.spring_layout(nx.Graph(graph.to_scipy()), seed=0)
        positions = np.array([layout[i] for i in range(graph.n_nodes)])
    positions = np.asarray(positions, float)
    codes = states[trial]
    names = result.model.code_names
    with figure(6.0, 5.0) as (fig, ax):
        src, dst = graph.edge_sources, graph.indices
        segments = np.stack([positions[src], positions[dst]], axis=1)
        from matplotlib.collections import LineCollection

        ax.add_collection(LineCollection(segments, colors="0.8", linewidths=0.4, zorder=1))
        for code in np.unique(codes):
            at = codes == code
            ax.scatter(positions[at, 0], positions[at, 1], s=max(4, 3000 / max(graph.n_nodes, 1) ** 0.9),
                       label=f"{names[code]} ({int(at.sum())})", zorder=2)
        ax.set_axis_off()
        ax.legend(loc="best", fontsize=8)
        ax.set_title(f"{type(result.model).__name__} on {graph.name or 'graph'}: final states, trial {trial}")
        return save(fig, path)
