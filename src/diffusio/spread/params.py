"""Validation of model parameters, and their expansion to per-edge / per-node arrays.

A model parameter is a number, or a mapping that gives one value per edge
(``{(u, v): value}``) or per node (``{label: value}``).  Edge parameters may
also be the string ``"weight"``: the graph's edge weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Real

import numpy as np

from diffusio.errors import UsageError
from diffusio.spread.graph import Graph

EdgeValue = "float | str | Mapping[tuple, float]"
NodeValue = "float | Mapping[object, float]"


def check_number(name: str, value, low: float = 0.0, high: float = np.inf) -> float:
    """Check ``low <= value <= high`` and return it as a float."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise UsageError(f"{name} must be a number, got {value!r}; pass e.g. {name}=0.1")
    value = float(value)
    if not (low <= value <= high):
        bound = f"in [{low:g}, {high:g}]" if np.isfinite(high) else f">= {low:g}"
        raise UsageError(f"{name} must be {bound}, got {value:g}; pass a value {bound}")
    return value


def check_edge_param(name: str, value, high: float = np.inf):
    """Validate an edge parameter at model construction."""
    if isinstance(value, str):
        if value != "weight":
            raise UsageError(f"{name}={value!r} is not understood; pass a number, 'weight' or a {{(u, v): value}} dict")
        return value
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not (isinstance(key, tuple) and len(key) == 2):
                raise UsageError(f"{name} keys must be (u, v) edges, got {key!r}; pass {{(u, v): value}}")
            check_number(f"{name}[{key!r}]", item, 0.0, high)
        return dict(value)
    return check_number(name, value, 0.0, high)


def check_node_param(name: str, value, high: float = np.inf):
    """Validate a node parameter at model construction."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            check_number(f"{name}[{key!r}]", item, 0.0, high)
        return dict(value)
    return check_number(name, value, 0.0, high)


NO_EDGE_VALUES = np.zeros(0)  # stands in for a per-edge array that a uniform value makes unnecessary


def edge_array(graph: Graph, name: str, value, high: float = np.inf) -> np.ndarray:
    """One value per CSR entry.  Edges missing from a mapping get 0."""
    if isinstance(value, str):
        # the graph's own array: every model only reads it, so no per-call copy (the unit-weight view
        # of one number is spelled out: kernels take contiguous arrays)
        values = graph.weights.copy() if graph.unweighted else graph.weights
        if values.size and values.max() > high:
            raise UsageError(f"{name}='weight' needs edge weights <= {high:g}, the largest is {values.max():g}; "
                             f"rescale the weights or pass a number")
        return values
    if isinstance(value, Mapping):
        values = np.zeros(graph.indices.size)
        positions, owners = graph.edge_positions(value.keys())
        values[positions] = np.asarray(list(value.values()), dtype=np.float64)[owners]
        return values
    return np.full(graph.indices.size, float(value))


def node_array(graph: Graph, name: str, value) -> np.ndarray:
    """One value per node.  A mapping must name every node."""
    if isinstance(value, Mapping):
        index = graph.index_of(value.keys(), what=name)
        if len(set(index.tolist())) != graph.n_nodes:
            missing = next(x for i, x in enumerate(graph.labels.tolist()) if i not in set(index.tolist()))
            raise UsageError(f"{name} has no value for node {missing!r}; give a value for every node or a number")
        values = np.empty(graph.n_nodes)
        values[index] = np.asarray(list(value.values()), dtype=np.float64)
        return values
    return np.full(graph.n_nodes, float(value))


def uniform_value(value) -> float:
    """The number itself, or -1 when the parameter varies by edge / node."""
    return float(value) if isinstance(value, Real) else -1.0
