"""Built-in graphs that need no download, and seeded random graph generators.

Named datasets come from networkx (social networks) and from the PyPI package
``pygsp``, which ships its data files (road and sensor networks, meshes).
Random graphs are named ``"barabasi-albert:n=1000,m=3,seed=0"`` and the like.
"""

from __future__ import annotations

import warnings
from typing import Callable

import networkx as nx
import numpy as np
import pandas as pd

from diffusio.errors import UsageError
from diffusio.spread.graph import Graph, as_graph


def _pygsp(name: str) -> Callable[[], Graph]:
    def load() -> Graph:
        try:
            from pygsp import graphs
        except ImportError:
            raise UsageError(f"dataset {name!r} needs the package pygsp; install it with 'pip install pygsp'") from None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pygsp emits scipy deprecation warnings
            pg = getattr(graphs, name)()
        return as_graph(pg.W, directed=False, name=name.lower())
    return load


# name -> (loader, description)
_DATASETS: dict[str, tuple[Callable[[], Graph], str]] = {
    "karate": (lambda: as_graph(nx.karate_club_graph(), weight=None, name="karate"),
               "Zachary's karate club: 34 members, 78 friendships (networkx)"),
    "les-miserables": (lambda: as_graph(nx.les_miserables_graph(), name="les-miserables"),
                       "Les Miserables co-appearances: 77 characters, 254 weighted edges (networkx)"),
    "florentine-families": (lambda: as_graph(nx.florentine_families_graph(), name="florentine-families"),
                            "Florentine families marriages: 15 families, 20 edges (networkx)"),
    "davis-southern-women": (lambda: as_graph(nx.davis_southern_women_graph(), name="davis-southern-women"),
                             "Davis southern women: 32 nodes, 89 event attendances, bipartite (networkx)"),
    "minnesota": (_pygsp("Minnesota"), "Minnesota road network: 2642 intersections, 3304 roads (pygsp)"),
    "airfoil": (_pygsp("Airfoil"), "Airfoil finite-element mesh: 4253 nodes, 12289 edges (pygsp)"),
    "david-sensor-net": (_pygsp("DavidSensorNet"), "David sensor network: 500 sensors (pygsp)"),
}

_GENERATORS = {
    "erdos-renyi": (lambda n, p, seed: nx.fast_gnp_random_graph(n, p, seed=seed), {"n": 1000, "p": 0.01, "seed": 0},
                    "G(n, p) random graph"),
    "barabasi-albert": (lambda n, m, seed: nx.barabasi_albert_graph(n, m, seed=seed), {"n": 1000, "m": 3, "seed": 0},
                        "preferential attachment, m edges per new node"),
    "watts-strogatz": (lambda n, k, p, seed: nx.watts_strogatz_graph(n, k, p, seed=seed),
                       {"n": 1000, "k": 6, "p": 0.1, "seed": 0}, "small world: ring of k neighbours, rewired with p"),
}


def dataset_names() -> list[str]:
    """Names accepted by :func:`load_dataset` (random generators without parameters use defaults)."""
    return list(_DATASETS) + list(_GENERATORS)


def list_datasets() -> pd.DataFrame:
    """Table of built-in datasets and random generators with a description.

    Examples
    --------
    >>> "karate" in list_datasets()["name"].tolist()
    True
    """
    rows = [{"name": name, "kind": "dataset", "description": text} for name, (_, text) in _DATASETS.items()]
    for name, (_, defaults, text) in _GENERATORS.items():
        spec = ",".join(f"{k}={v}" for k, v in defaults.items())
        rows.append({"name": f"{name}:{spec}", "kind": "random", "description": text})
    return pd.DataFrame(rows)


def random_graph(kind: str, *, seed: int = 0, **params) -> Graph:
    """A seeded random graph: ``"erdos-renyi"`` (n, p), ``"barabasi-albert"`` (n, m) or
    ``"watts-strogatz"`` (n, k, p).

    Examples
    --------
    >>> g = random_graph("barabasi-albert", n=100, m=2, seed=1)
    >>> g.n_nodes, g.n_edges
    (100, 196)
    """
    if kind not in _GENERATORS:
        raise UsageError(f"unknown random graph {kind!r}; use one of: {', '.join(_GENERATORS)}")
    make, defaults, _ = _GENERATORS[kind]
    unknown = set(params) - set(defaults)
    if unknown:
        raise UsageError(f"{kind} takes {', '.join(k for k in defaults if k != 'seed')}, "
                         f"not {', '.join(sorted(unknown))}")
    values = {**defaults, **params, "seed": seed}
    for key, default in defaults.items():
        if isinstance(default, int) and not isinstance(values[key], (int, np.integer)):
            raise UsageError(f"{kind}: {key} must be a whole number, got {values[key]!r}")
    for key in ("p",):  # found by the fuzz: erdos-renyi:p=2 built a complete graph without a word
        if key in values and not 0 <= values[key] <= 1:
            raise UsageError(f"{kind}: {key} must be a probability in [0, 1], got {values[key]!r}")
    if "n" in values and values["n"] > 10 ** 7:
        raise UsageError(f"{kind}: n={values['n']:,} is beyond what networkx builds in memory here (10^7); "
                         "load a prebuilt edge list instead")
    try:
        graph = make(**values)
    except (nx.NetworkXError, ValueError) as err:
        raise UsageError(f"cannot build {kind} with {values}: {err}") from None
    spec = ",".join(f"{k}={v}" for k, v in values.items())
    return as_graph(graph, name=f"{kind}:{spec}")


def _parse_spec(text: str) -> tuple[str, dict]:
    kind, _, rest = text.partition(":")
    params: dict = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise UsageError(f"cannot read {item!r} in {text!r}; write parameters as key=value, e.g. "
                             "barabasi-albert:n=1000,m=3,seed=0")
        try:
            params[key.strip()] = int(value) if value.strip().lstrip("-").isdigit() else float(value)
        except ValueError:
            raise UsageError(f"parameter {key!r} in {text!r} must be a number, got {value!r}") from None
    return kind, params


def load_dataset(name: str) -> Graph:
    """Load a built-in dataset, or build a random graph from ``"kind:key=value,..."``.

    Examples
    --------
    >>> load_dataset("karate").n_nodes
    34
    >>> load_dataset("erdos-renyi:n=50,p=0.1,seed=3").n_nodes
    50
    """
    if name in _DATASETS:
        return _DATASETS[name][0]()
    kind, params = _parse_spec(name)
    if kind in _GENERATORS:
        return random_graph(kind, **params)
    raise UsageError(f"unknown dataset {name!r}; run 'diffusio spread datasets' to list them")
