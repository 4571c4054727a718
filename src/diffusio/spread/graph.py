"""One graph form for every model: CSR arrays plus the original node labels.

networkx graphs, scipy.sparse matrices, dense numpy adjacency matrices and
edge-list files all become a :class:`Graph`.  Row ``u`` of the CSR lists the
out-neighbours of ``u`` (edge ``u -> v``); an undirected graph stores both
directions.  Models only ever see integer node indices; labels come back in
outputs.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable

import networkx as nx
import numpy as np
import pandas as pd
import scipy.sparse as sp

from diffusio.errors import UsageError

_HEADER_WORDS = {"source", "target", "src", "dst", "from", "to", "u", "v", "node1", "node2", "weight", "w"}


@dataclass(eq=False)
class Graph:
    """A graph in compressed sparse row form with node labels.

    Parameters
    ----------
    indptr, indices, weights : numpy.ndarray
        CSR arrays: the out-edges of node ``u`` are ``indices[indptr[u]:indptr[u+1]]``
        with weights ``weights[indptr[u]:indptr[u+1]]``.
    labels : numpy.ndarray
        Label of every node, in index order.
    directed : bool
        Whether edges are one-way.  Undirected graphs store each edge both ways.
    name : str
        A short description, used in plots and summaries.

    Examples
    --------
    >>> import networkx as nx
    >>> g = as_graph(nx.path_graph(["a", "b", "c"]))
    >>> g.n_nodes, g.n_edges, list(g.labels)
    (3, 2, ['a', 'b', 'c'])
    """

    indptr: np.ndarray
    indices: np.ndarray
    weights: np.ndarray
    labels: np.ndarray
    directed: bool
    name: str = ""
    _index: dict | None = field(default=None, repr=False)

    @property
    def n_nodes(self) -> int:
        return len(self.indptr) - 1

    @property
    def n_edges(self) -> int:
        """Number of edges (undirected edges counted once, self-loops once)."""
        if self.directed:
            return int(self.indices.size)
        loops = int(np.count_nonzero(self.edge_sources == self.indices))
        return (int(self.indices.size) - loops) // 2 + loops

    @cached_property
    def out_degree(self) -> np.ndarray:
        return np.diff(self.indptr)

    @cached_property
    def edge_sources(self) -> np.ndarray:
        """Source node of every CSR entry (the row it sits in)."""
        return np.repeat(np.arange(self.n_nodes, dtype=np.int64), self.out_degree)

    @cached_property
    def reverse_csr(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CSR of the transposed graph: row ``v`` lists the in-neighbours of ``v``."""
        if not self.directed:
            return self.indptr, self.indices, self.weights
        matrix = sp.csr_array((self.weights, self.indices, self.indptr), shape=(self.n_nodes,) * 2)
        transposed = matrix.T.tocsr()
        transposed.sort_indices()
        return (transposed.indptr.astype(np.int64), transposed.indices.astype(np.int64),
                transposed.data.astype(np.float64))

    @cached_property
    def in_degree(self) -> np.ndarray:
        return np.bincount(self.indices, minlength=self.n_nodes)

    def index_of(self, labels: Iterable[Any], what: str = "seed") -> np.ndarray:
        """Integer indices of ``labels``; unknown labels raise :class:`UsageError`."""
        if self._index is None:
            self._index = {label: i for i, label in enumerate(self.labels.tolist())}
        out = []
        for label in labels:
            key = label.item() if isinstance(label, np.generic) else label
            if key not in self._index:
                sample = ", ".join(repr(x) for x in self.labels[:5].tolist())
                raise UsageError(f"{what} node {label!r} is not in the graph; "
                                 f"use labels of existing nodes (e.g. {sample})")
            out.append(self._index[key])
        return np.asarray(out, dtype=np.int64)

    def edge_positions(self, pairs: Iterable[tuple[Any, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """CSR positions of edges ``(u, v)``; returns (positions, index into ``pairs``).

        For undirected graphs both stored directions are returned.
        """
        pairs = list(pairs)
        if not pairs:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        sources = self.index_of([p[0] for p in pairs], what="edge")
        targets = self.index_of([p[1] for p in pairs], what="edge")
        directions = [(sources, targets)] if self.directed else [(sources, targets), (targets, sources)]
        positions, owners = [], []
        for src, dst in directions:
            for k, (u, v) in enumerate(zip(src, dst)):
                lo, hi = self.indptr[u], self.indptr[u + 1]
                at = lo + np.searchsorted(self.indices[lo:hi], v)
                if at >= hi or self.indices[at] != v:
                    raise UsageError(f"edge {pairs[k]!r} is not in the graph; give values only for existing edges")
                positions.append(at)
                owners.append(k)
        return np.asarray(positions, np.int64), np.asarray(owners, np.int64)

    def to_scipy(self) -> sp.csr_array:
        """The weighted adjacency matrix (row = source, column = target)."""
        return sp.csr_array((self.weights, self.indices, self.indptr), shape=(self.n_nodes,) * 2)

    def to_networkx(self) -> nx.Graph:
        """A networkx graph with the original labels and ``weight`` edge attributes."""
        graph = nx.DiGraph() if self.directed else nx.Graph()
        labels = self.labels.tolist()
        graph.add_nodes_from(labels)
        graph.add_weighted_edges_from(
            (labels[u], labels[v], w) for u, v, w in zip(self.edge_sources.tolist(), self.indices.tolist(),
                                                          self.weights.tolist()))
        return graph


def _from_matrix(matrix, labels, directed: bool | None, name: str) -> Graph:
    matrix = sp.csr_array(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise UsageError(f"adjacency matrix must be square, got shape {matrix.shape}; pass an n x n matrix")
    if matrix.shape[0] == 0:
        raise UsageError("the graph is empty (no nodes); pass a graph with at least one node")
    matrix.sum_duplicates()
    matrix.eliminate_zeros()  # a stored zero is not an edge
    matrix.sort_indices()
    if matrix.data.size and (not np.all(np.isfinite(matrix.data)) or matrix.data.min() < 0):
        raise UsageError("edge weights must be finite and >= 0; fix or drop the negative/NaN weights")
    if directed is None:
        directed = (matrix != matrix.T).nnz > 0
    elif not directed:
        matrix = matrix.maximum(matrix.T).tocsr()  # an undirected edge given one way counts both ways
        matrix.sort_indices()
    return Graph(indptr=matrix.indptr.astype(np.int64), indices=matrix.indices.astype(np.int64),
                 weights=matrix.data.astype(np.float64), labels=np.asarray(labels), directed=bool(directed),
                 name=name)


def _from_networkx(graph: nx.Graph, weight: str | None, name: str) -> Graph:
    if graph.number_of_nodes() == 0:
        raise UsageError("the graph is empty (no nodes); pass a graph with at least one node")
    nodes = list(graph.nodes)
    matrix = nx.to_scipy_sparse_array(graph, nodelist=nodes, weight=weight, format="csr", dtype=np.float64)
    labels = np.empty(len(nodes), dtype=object)
    labels[:] = nodes
    if all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in nodes):
        labels = np.asarray(nodes, dtype=np.int64)
    return _from_matrix(matrix, labels, graph.is_directed(), name or str(graph.name or ""))


def _looks_like_header(row: list[str]) -> bool:
    if row[0].strip().lower() in _HEADER_WORDS or row[1].strip().lower() in _HEADER_WORDS:
        return True
    if len(row) > 2:
        try:
            float(row[2])
        except ValueError:
            return True
    return False


def read_edge_list(path: str | os.PathLike, *, directed: bool = False, delimiter: str | None = None) -> Graph:
    """Read a CSV/TSV edge list: ``source, target[, weight]`` per line, header optional.

    Parameters
    ----------
    path : str or path
        The file.  ``.tsv`` files are tab separated, others are sniffed (comma, tab, space).
    directed : bool
        Treat each line as a one-way edge.
    delimiter : str, optional
        Force a column separator.

    Returns
    -------
    Graph
        Labels are integers when every label is an integer, strings otherwise.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "edges.csv"
    >>> _ = path.write_text("source,target,weight\\na,b,0.5\\nb,c,1\\n")
    >>> read_edge_list(path).n_edges
    2
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"edge-list file {str(path)!r} not found; pass an existing CSV/TSV file")
    if delimiter is None and path.suffix.lower() == ".tsv":
        delimiter = "\t"
    try:
        table = pd.read_csv(path, sep=delimiter or None, engine="python", header=None, dtype=str,
                            skipinitialspace=True, comment="#")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, csv.Error) as err:
        raise UsageError(f"cannot read edge list {str(path)!r} ({err}); "
                         "write one 'source,target[,weight]' per line") from None
    if table.shape[1] < 2 or table.shape[0] == 0:
        raise UsageError(f"edge list {str(path)!r} needs at least two columns (source, target) and one row; "
                         "write one 'source,target[,weight]' per line")
    if _looks_like_header(table.iloc[0].fillna("").astype(str).tolist()):
        table = table.iloc[1:]
    if table.shape[0] == 0:
        raise UsageError(f"edge list {str(path)!r} has a header but no edges; add 'source,target' lines")
    ends = table.iloc[:, :2].apply(lambda col: col.str.strip())
    if ends.isna().any().any():
        raise UsageError(f"edge list {str(path)!r} has a line with a missing node; give two nodes per line")
    try:
        weights = table.iloc[:, 2].astype(float).to_numpy() if table.shape[1] > 2 else np.ones(len(table))
    except ValueError:
        raise UsageError(f"edge list {str(path)!r}: the third column must hold numeric weights") from None
    if not np.isfinite(weights).all():
        raise UsageError(f"edge list {str(path)!r}: a weight is missing or not finite; give a number on every line")
    names = pd.unique(ends.to_numpy().ravel())
    try:
        labels = np.asarray([int(x) for x in names], dtype=np.int64)
    except ValueError:
        labels = np.asarray(names, dtype=object)
    codes = pd.Index(names).get_indexer(ends.to_numpy().ravel()).reshape(-1, 2)
    n = len(names)
    matrix = sp.coo_array((weights, (codes[:, 0], codes[:, 1])), shape=(n, n)).tocsr()
    return _from_matrix(matrix, labels, directed, path.name)


def as_graph(obj: Any, *, directed: bool | None = None, weight: str | None = "weight", name: str = "") -> Graph:
    """Convert a graph-like object to a :class:`Graph`.

    Parameters
    ----------
    obj : Graph, networkx graph, scipy.sparse matrix, 2-D numpy array, or str / path
        A string is a built-in dataset name (see :func:`diffusio.spread.datasets`)
        or the path of a CSV/TSV edge list.
    directed : bool, optional
        For matrices: ``None`` detects symmetry.  For edge lists: default undirected.
        networkx graphs keep their own direction.
    weight : str or None
        networkx edge attribute holding weights (missing attribute = 1).

    Returns
    -------
    Graph

    Examples
    --------
    >>> import numpy as np
    >>> g = as_graph(np.array([[0, 1], [0, 0]]))
    >>> g.directed, g.n_edges
    (True, 1)
    """
    if isinstance(obj, Graph):
        return obj
    if isinstance(obj, nx.Graph):
        return _from_networkx(obj, weight, name)
    if sp.issparse(obj):
        return _from_matrix(obj, np.arange(obj.shape[0]), directed, name)
    if isinstance(obj, np.ndarray):
        if obj.ndim != 2:
            raise UsageError(f"a numpy adjacency matrix must be 2-D, got {obj.ndim}-D; pass an n x n array")
        return _from_matrix(sp.csr_array(obj), np.arange(obj.shape[0]), directed, name)
    if isinstance(obj, (str, os.PathLike)):
        from diffusio.spread.datasets import dataset_names, load_dataset

        text = os.fspath(obj)
        if not Path(text).exists() and text.partition(":")[0] in dataset_names():
            return load_dataset(text)
        if not Path(text).exists():
            raise UsageError(f"{text!r} is neither a file nor a built-in dataset; "
                             f"use an edge-list path or one of: {', '.join(dataset_names())}")
        return read_edge_list(text, directed=bool(directed))
    raise UsageError(f"cannot make a graph from {type(obj).__name__}; pass a networkx graph, "
                     "a scipy.sparse matrix, an edge-list path or a dataset name")
