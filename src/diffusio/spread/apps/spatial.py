"""Spatial spread of development or services over a road network or a grid, with distance decay.

Each node holds a level ``x`` in [0, 1] (share developed / served).  Sources
stay at 1.  At every step

    x_i <- x_i + rate * (1 - x_i) * sum_j K_ij x_j / sum_j K_ij,   K_ij = exp(-d_ij / decay)

over network neighbours ``j`` at Euclidean road length ``d_ij``: long roads
pass on less, so development creeps outward along short links first.
"""

from __future__ import annotations

import warnings
from typing import Any, Iterable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from diffusio.errors import UsageError
from diffusio.spread.graph import Graph, as_graph
from diffusio.spread.params import check_number


def minnesota() -> tuple[Graph, np.ndarray]:
    """The Minnesota road network (pygsp) with node coordinates, shape (2642, 2).

    Examples
    --------
    >>> graph, xy = minnesota()
    >>> graph.n_nodes, xy.shape
    (2642, (2642, 2))
    """
    try:
        from pygsp import graphs
    except ImportError:
        raise UsageError("the Minnesota road network needs pygsp; install it with 'pip install pygsp'") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pg = graphs.Minnesota()
    return as_graph(pg.W, directed=False, name="minnesota"), np.asarray(pg.coords, np.float64)


def spatial_graph(spec: str) -> tuple[Graph, np.ndarray]:
    """A graph with coordinates by name: ``minnesota`` or ``grid:ROWSxCOLS``.

    Examples
    --------
    >>> graph, xy = spatial_graph("grid:3x4")
    >>> graph.n_nodes
    12
    """
    if spec == "minnesota":
        return minnesota()
    if spec.startswith("grid:"):
        try:
            rows, cols = (int(x) for x in spec[5:].lower().split("x"))
        except ValueError:
            raise UsageError(f"graph {spec!r}: write a grid as grid:ROWSxCOLS, e.g. grid:30x30") from None
        return grid(rows, cols)
    raise UsageError(f"graph {spec!r}: use minnesota or grid:ROWSxCOLS")


def grid(rows: int, cols: int) -> tuple[Graph, np.ndarray]:
    """A rows x cols lattice with unit spacing; node ``r * cols + c`` sits at (c, r).

    Examples
    --------
    >>> graph, xy = grid(2, 3)
    >>> graph.n_edges, xy[4].tolist()
    (7, [1.0, 1.0])
    """
    for name, value in (("rows", rows), ("cols", cols)):
        if not isinstance(value, int) or value < 1:
            raise UsageError(f"{name} must be a positive integer, got {value!r}")
    index = np.arange(rows * cols).reshape(rows, cols)
    right = np.column_stack([index[:, :-1].ravel(), index[:, 1:].ravel()])
    down = np.column_stack([index[:-1, :].ravel(), index[1:, :].ravel()])
    edges = np.vstack([right, down])
    n = rows * cols
    matrix = sp.coo_array((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    graph = as_graph(matrix.tocsr(), directed=False, name=f"grid {rows}x{cols}")
    xy = np.column_stack([index.ravel() % cols, index.ravel() // cols]).astype(np.float64)
    return graph, xy


def decay_kernel(graph: Graph, positions: np.ndarray, decay: float) -> sp.csr_array:
    """Row-normalised ``exp(-d_ij / decay)`` over the graph's edges (rows with no edge stay zero)."""
    positions = np.asarray(positions, np.float64)
    if positions.shape != (graph.n_nodes, 2):
        raise UsageError(f"positions must have shape ({graph.n_nodes}, 2), got {positions.shape}")
    decay = check_number("decay", decay, 1e-12)
    length = np.linalg.norm(positions[graph.edge_sources] - positions[graph.indices], axis=1)
    weights = np.exp(-length / decay)
    sums = np.bincount(graph.edge_sources, weights=weights, minlength=graph.n_nodes)
    data = weights / np.where(sums > 0, sums, 1.0)[graph.edge_sources]
    return sp.csr_array((data, graph.indices, graph.indptr), shape=(graph.n_nodes,) * 2)


def spatial_spread(graph: Any, positions, seeds: Iterable, *, steps: int = 50, rate: float = 0.5,
                   decay: float = 1.0) -> np.ndarray:
    """Development level of every node at steps 0..steps, shape (steps + 1, nodes).

    Parameters
    ----------
    graph : graph-like
    positions : array (nodes, 2)
        Coordinates; edge lengths are Euclidean.
    seeds : node labels
        Where development starts (held at 1); the same word as ``simulate(seeds=...)``.
    rate : float in (0, 1]
        Speed of uptake from developed neighbours.
    decay : float > 0
        Length scale of the distance decay.

    Examples
    --------
    >>> graph, xy = grid(1, 2)
    >>> levels = spatial_spread(graph, xy, [0], steps=3, rate=0.5)
    >>> levels[:, 1].tolist()     # 1 - (1 - rate)^t
    [0.0, 0.5, 0.75, 0.875]
    """
    graph = as_graph(graph)
    rate = check_number("rate", rate, 0.0, 1.0)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise UsageError(f"steps must be a positive integer, got {steps!r}")
    kernel = decay_kernel(graph, positions, decay)
    start = graph.index_of(list(seeds), what="seed")
    if start.size == 0:
        raise UsageError("seeds is empty; give at least one seed node")
    x = np.zeros(graph.n_nodes)
    x[start] = 1.0
    levels = np.empty((steps + 1, graph.n_nodes))
    levels[0] = x
    for t in range(1, steps + 1):
        x = x + rate * (1.0 - x) * (kernel @ x)
        x[start] = 1.0
        levels[t] = x
    return levels


def arrival_times(levels: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """First step at which each node's level reaches ``threshold`` (``inf`` if never)."""
    check_number("threshold", threshold, 0.0, 1.0)
    reached = levels >= threshold
    first = np.argmax(reached, axis=0).astype(np.float64)
    first[~reached.any(axis=0)] = np.inf
    return first


def spread_table(graph: Graph, levels: np.ndarray) -> pd.DataFrame:
    """Tidy levels: ``step``, ``node`` (label), ``level``."""
    steps, n = levels.shape
    return pd.DataFrame({"step": np.repeat(np.arange(steps), n), "node": np.tile(graph.labels, steps),
                         "level": levels.ravel()})


def plot_spatial(graph: Graph, positions, levels: np.ndarray, path, *, at: Iterable[int] = (0, 10, 50),
                 title: str | None = None):
    """Map of the development level at the chosen steps (one panel per step), written atomically to PNG."""
    from matplotlib.collections import LineCollection

    from diffusio.figures import figure, save

    at = [int(t) for t in at]
    if not at or min(at) < 0 or max(at) >= levels.shape[0]:
        raise UsageError(f"steps to draw must lie in [0, {levels.shape[0] - 1}], got {at}")
    positions = np.asarray(positions, np.float64)
    segments = np.stack([positions[graph.edge_sources], positions[graph.indices]], axis=1)
    with figure(4.0 * len(at), 4.0, ncols=len(at)) as (fig, axes):
        axes = np.atleast_1d(axes)
        for ax, t in zip(axes, at):
            ax.add_collection(LineCollection(segments, colors="lightgrey", linewidths=0.5))
            points = ax.scatter(positions[:, 0], positions[:, 1], c=levels[t], cmap="viridis", vmin=0, vmax=1,
                                s=max(2.0, 400.0 / np.sqrt(graph.n_nodes)))
            ax.set_title(f"step {t}")
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
        fig.colorbar(points, ax=list(axes), shrink=0.8, label="development level")
        if title:
            fig.suptitle(title)
        return save(fig, path)
