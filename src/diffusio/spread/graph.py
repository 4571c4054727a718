"""One graph form for every model: CSR arrays plus the original node labels.

networkx graphs, scipy.sparse matrices, dense numpy adjacency matrices and
edge-list files all become a :class:`Graph`.  Row ``u`` of the CSR lists the
out-neighbours of ``u`` (edge ``u -> v``); an undirected graph stores both
directions.  Models only ever see integer node indices; labels come back in
outputs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable

import networkx as nx
import numpy as np
import scipy.sparse as sp

from diffusio.errors import UsageError

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
    _index: dict | None = field(default=None, repr=False)  # label -> position (see index_of)

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
        return np.repeat(np.arange(self.n_nodes, dtype=self.indices.dtype), self.out_degree)

    @property
    def unweighted(self) -> bool:
        """Every edge has weight 1 (then ``weights`` is a read-only view that takes no memory)."""
        return self.weights.size > 0 and self.weights.strides == (0,)

    @property
    def nbytes(self) -> int:
        """Memory held by the CSR arrays (labels and cached reverse/edge arrays not included)."""
        return sum(a.nbytes for a in (self.indptr, self.indices)) + (0 if self.unweighted else self.weights.nbytes)

    @cached_property
    def reverse_csr(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CSR of the transposed graph: row ``v`` lists the in-neighbours of ``v``."""
        if not self.directed:
            return self.indptr, self.indices, self.weights
        weights = np.zeros(self.indices.size, np.int8) if self.unweighted else self.weights
        matrix = sp.csr_array((weights, self.indices, self.indptr), shape=(self.n_nodes,) * 2)
        transposed = matrix.T.tocsr()
        transposed.sort_indices()
        return (transposed.indptr.astype(np.int64), transposed.indices.astype(self.indices.dtype, copy=False),
                _ones(transposed.nnz) if self.unweighted else transposed.data.astype(np.float64, copy=False))

    @cached_property
    def in_degree(self) -> np.ndarray:
        return np.bincount(self.indices, minlength=self.n_nodes)

    def index_of(self, labels: Iterable[Any], what: str = "seed") -> np.ndarray:
        """Integer indices of ``labels``; unknown labels raise :class:`UsageError`."""
        keys = [label.item() if isinstance(label, np.generic) else label for label in labels]
        if self.labels.dtype.kind in "iu":
            found = self._integer_positions(keys)
        else:
            if self._index is None:
                self._index = {label: i for i, label in enumerate(self.labels.tolist())}
            found = [self._index.get(key, -1) for key in keys]
        for key, at in zip(keys, found):
            if at < 0:
                sample = ", ".join(repr(x) for x in self.labels[:5].tolist())
                raise UsageError(f"{what} node {key!r} is not in the graph; "
                                 f"use labels of existing nodes (e.g. {sample})")
        return np.asarray(found, dtype=np.int64)

    def _integer_positions(self, keys: list) -> list[int]:
        """Positions of integer labels by binary search (a dict of 10^7 labels would take a gigabyte);
        labels ``0..n-1`` need no table at all.  -1 where a key is not a label."""
        if self._index is None:
            labels = self.labels
            if labels.size and labels[0] == 0 and labels[-1] == labels.size - 1 and np.all(np.diff(labels) == 1):
                self._index = {"range": True}
            else:
                order = np.argsort(labels, kind="stable")
                self._index = {"range": False, "order": order, "sorted": labels[order]}
        out = []
        for key in keys:
            key = _whole(key)
            if key is None or not -2**63 <= key < 2**63:
                out.append(-1)
            elif self._index["range"]:
                out.append(key if 0 <= key < self.n_nodes else -1)
            else:
                at = int(np.searchsorted(self._index["sorted"], key))
                hit = at < self.n_nodes and self._index["sorted"][at] == key
                out.append(int(self._index["order"][at]) if hit else -1)
        return out

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
        return sp.csr_array((np.ascontiguousarray(self.weights), self.indices, self.indptr), shape=(self.n_nodes,) * 2)

    def to_networkx(self) -> nx.Graph:
        """A networkx graph with the original labels and ``weight`` edge attributes."""
        graph = nx.DiGraph() if self.directed else nx.Graph()
        labels = self.labels.tolist()
        graph.add_nodes_from(labels)
        graph.add_weighted_edges_from(
            (labels[u], labels[v], w) for u, v, w in zip(self.edge_sources.tolist(), self.indices.tolist(),
                                                          self.weights.tolist()))
        return graph


def _whole(key: Any) -> int | None:
    """``key`` as an int when it is a whole number (3, 3.0; as a dict of int labels would match), else None."""
    if isinstance(key, int):
        return int(key)
    if isinstance(key, float) and key.is_integer():
        return int(key)
    return None


def _from_matrix(matrix, labels, directed: bool | None, name: str, symmetric: bool = False) -> Graph:
    matrix = sp.csr_array(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise UsageError(f"adjacency matrix must be square, got shape {matrix.shape}; pass an n x n matrix")
    if matrix.shape[0] == 0:
        raise UsageError("the graph is empty (no nodes); pass a graph with at least one node")
    if matrix.dtype.kind not in "biuf" or not matrix.has_canonical_format:
        matrix = matrix.astype(np.float64)  # repeated edges add up as weights, so sum them as numbers
        matrix.sum_duplicates()
    matrix.eliminate_zeros()  # a stored zero is not an edge
    data = matrix.data
    if data.size and (not np.all(np.isfinite(data)) or data.min() < 0):
        raise UsageError("edge weights must be finite and >= 0; fix or drop the negative/NaN weights")
    # unit weights travel as one byte per edge through the checks below, and as no bytes after
    unit = data.size == 0 or (data.min() == 1 and data.max() == 1)
    matrix = sp.csr_array((np.ones(data.size, np.int8) if unit else data.astype(np.float64, copy=False),
                           matrix.indices, matrix.indptr), shape=matrix.shape)
    if directed is None:
        directed = (matrix != matrix.T).nnz > 0
    elif not directed and not symmetric:
        matrix = _symmetrised(matrix)  # an undirected edge given one way counts both ways
    return csr_graph(matrix.indptr, matrix.indices, None if unit else matrix.data, labels=np.asarray(labels),
                     directed=bool(directed), name=name)


def _symmetrised(matrix: sp.csr_array) -> sp.csr_array:
    """``max(A, A^T)``; a matrix that is symmetric already is returned as it is, after one transpose
    (the element-wise maximum would hold three matrices at once)."""
    transposed = matrix.T.tocsr()
    transposed.sort_indices()
    if (np.array_equal(transposed.indptr, matrix.indptr) and np.array_equal(transposed.indices, matrix.indices)
            and np.array_equal(transposed.data, matrix.data)):
        return matrix
    out = matrix.maximum(transposed).tocsr()
    out.sort_indices()
    return out


def _ones(size: int) -> np.ndarray:
    """``size`` weights of 1 as a read-only view of one number: no memory per edge."""
    return np.broadcast_to(np.float64(1.0), (size,))


def csr_graph(indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray | None, *, labels: np.ndarray,
              directed: bool, name: str = "") -> Graph:
    """A :class:`Graph` in the lean dtypes: int64 ``indptr``, int32 ``indices`` where the node count
    fits (4 bytes per edge instead of 8), and weights held as a zero-memory view when every weight is
    1 (the common unweighted case), as float32 where that stores every weight exactly (counts,
    halves, quarters: 4 bytes per edge), else float64: a weight may be an exposure or a rate whose
    digits matter, and no result may change with the storage.  The arrays are taken as they are
    (sorted rows, no duplicates); copies are made only where a dtype changes."""
    n = len(indptr) - 1
    index_dtype = np.int32 if n < np.iinfo(np.int32).max else np.int64
    if weights is None or (weights.size and weights.min() == 1 and weights.max() == 1):
        weights = _ones(len(indices))
    else:
        weights = np.asarray(weights)
        narrow = weights.astype(np.float32)
        weights = narrow if np.array_equal(narrow, weights) else weights.astype(np.float64, copy=False)
    return Graph(indptr=np.asarray(indptr).astype(np.int64, copy=False),
                 indices=np.asarray(indices).astype(index_dtype, copy=False), weights=weights, labels=labels,
                 directed=bool(directed), name=name)


def _from_networkx(graph: nx.Graph, weight: str | None, name: str) -> Graph:
    if graph.number_of_nodes() == 0:
        raise UsageError("the graph is empty (no nodes); pass a graph with at least one node")
    nodes = list(graph.nodes)
    matrix = nx.to_scipy_sparse_array(graph, nodelist=nodes, weight=weight, format="csr", dtype=np.float64)
    labels = np.empty(len(nodes), dtype=object)
    labels[:] = nodes
    if all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in nodes):
        labels = np.asarray(nodes, dtype=np.int64)
    # an undirected networkx graph comes out symmetric already: no transpose (3x the edges in memory)
    return _from_matrix(matrix, labels, graph.is_directed(), name or str(graph.name or ""),
                        symmetric=not graph.is_directed())


def as_graph(obj: Any, *, directed: bool | None = None, weight: str | None = "weight", name: str = "") -> Graph:
    """Convert a graph-like object to a :class:`Graph`.

    Parameters
    ----------
    obj : Graph, networkx graph, scipy.sparse matrix, 2-D numpy array, or str / path
        A string is a built-in dataset name (see :func:`diffusio.spread.datasets`)
        or the path of a graph file: a CSV/TSV edge list, ``.npz`` or ``.parquet``
        (:func:`diffusio.spread.files.read_edge_list`).
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
        from diffusio.spread.files import read_edge_list

        return read_edge_list(text, directed=bool(directed))
    raise UsageError(f"cannot make a graph from {type(obj).__name__}; pass a networkx graph, "
                     "a scipy.sparse matrix, an edge-list path or a dataset name")
