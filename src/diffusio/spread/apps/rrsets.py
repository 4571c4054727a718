"""Reverse-reachable (RR) sets and greedy maximum coverage, the sampling core of IMM.

An RR set of a random root ``v`` is the set of nodes that reach ``v`` in one
random live-edge graph: for independent cascade each in-edge ``u -> v`` is
live with probability ``p(u, v)``; for linear threshold (uniform random
thresholds) each node keeps at most one in-edge, ``u -> v`` with probability
``w(u, v)`` (Kempe et al. 2003).  ``n * Pr[S hits a random RR set]`` is the
expected spread of ``S`` (Borgs et al. 2014).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from diffusio.spread.graph import Graph
from diffusio.spread.rng import below, uniform

IC, LT = 0, 1


def reverse_edges(graph: Graph, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """In-edge CSR: row ``v`` lists the sources ``u`` of edges ``u -> v`` and the per-edge ``values``."""
    order = np.argsort(graph.indices, kind="stable")
    indptr = np.zeros(graph.n_nodes + 1, np.int64)
    np.cumsum(np.bincount(graph.indices, minlength=graph.n_nodes), out=indptr[1:])
    return indptr, graph.edge_sources[order].astype(np.int64), np.ascontiguousarray(values[order], np.float64)


@njit(cache=True, nogil=True)
def _rr_sets(rev_indptr, rev_sources, rev_values, kind, count, state, set_ptr, nodes, stamp, mark0):
    """Append up to ``count`` RR sets; return (sets written, nodes written).  Stops early when ``nodes`` is full."""
    n = rev_indptr.size - 1
    queue = np.empty(n, np.int64)
    written = 0
    used = set_ptr[0]
    rng = state
    for s in range(count):
        mark = mark0 + s + 1
        root = below(rng, n)
        if used + n > nodes.size:  # a set can hold every node: keep room for one
            return written, used
        stamp[root] = mark
        queue[0] = root
        tail = 1
        head = 0
        while head < tail:
            v = queue[head]
            head += 1
            lo = rev_indptr[v]
            hi = rev_indptr[v + 1]
            if kind == IC:
                for e in range(lo, hi):
                    u = rev_sources[e]
                    if stamp[u] != mark and uniform(rng) < rev_values[e]:
                        stamp[u] = mark
                        queue[tail] = u
                        tail += 1
            else:
                # live-edge LT: pick in-edge e with probability w_e, none with 1 - sum w
                x = uniform(rng)
                acc = 0.0
                for e in range(lo, hi):
                    acc += rev_values[e]
                    if x < acc:
                        u = rev_sources[e]
                        if stamp[u] != mark:
                            stamp[u] = mark
                            queue[tail] = u
                            tail += 1
                        break
        for i in range(tail):
            nodes[used + i] = queue[i]
        used += tail
        written += 1
        set_ptr[written] = used
    return written, used


class RRSampler:
    """Grows a pool of RR sets for one graph and diffusion model, reproducibly from ``seed``.

    Examples
    --------
    >>> import networkx as nx
    >>> from diffusio.spread import as_graph
    >>> g = as_graph(nx.star_graph(4))
    >>> sampler = RRSampler(g, np.ones(g.indices.size), IC, seed=0)
    >>> sampler.extend(10)
    >>> sampler.size, int(sampler.sets()[0][-1])   # p = 1: every RR set is the whole star
    (10, 50)
    """

    def __init__(self, graph: Graph, edge_values: np.ndarray, kind: int, seed: int | None = 0):
        self.n = graph.n_nodes
        self.rev = reverse_edges(graph, np.asarray(edge_values, np.float64))
        self.kind = kind
        self.state = np.random.SeedSequence(seed).generate_state(1, np.uint64)
        self.set_ptr = np.zeros(1024 + 1, np.int64)
        self.nodes = np.empty(max(4 * self.n, 1 << 16), np.int64)
        self.stamp = np.zeros(self.n, np.int64)
        self.size = 0
        self.total = 0

    def extend(self, count: int) -> None:
        """Add ``count`` more RR sets to the pool."""
        while count > 0:
            if self.set_ptr.size < self.size + count + 1:
                self.set_ptr = np.concatenate([self.set_ptr, np.zeros(max(self.size + count + 1, self.set_ptr.size),
                                                                       np.int64)])
            if self.nodes.size - self.total < 2 * self.n:
                self.nodes = np.concatenate([self.nodes, np.empty(self.nodes.size, np.int64)])
            view = self.set_ptr[self.size:]
            view[0] = self.total
            written, used = _rr_sets(*self.rev, self.kind, int(count), self.state, view, self.nodes, self.stamp,
                                     int(self.size))
            self.size += int(written)
            self.total = int(used)
            count -= int(written)

    def sets(self) -> tuple[np.ndarray, np.ndarray]:
        """(set pointers, flat node array) of the pool, CSR style."""
        return self.set_ptr[: self.size + 1], self.nodes[: self.total]


@njit(cache=True, nogil=True)
def _max_coverage(set_ptr, nodes, n, k):
    n_sets = set_ptr.size - 1
    degree = np.zeros(n, np.int64)
    for i in range(nodes.size):
        degree[nodes[i]] += 1
    # node -> sets index
    node_ptr = np.zeros(n + 1, np.int64)
    for v in range(n):
        node_ptr[v + 1] = node_ptr[v] + degree[v]
    fill = node_ptr[:-1].copy()
    node_sets = np.empty(nodes.size, np.int64)
    for s in range(n_sets):
        for i in range(set_ptr[s], set_ptr[s + 1]):
            v = nodes[i]
            node_sets[fill[v]] = s
            fill[v] += 1
    covered = np.zeros(n_sets, np.bool_)
    chosen = np.empty(k, np.int64)
    gains = np.empty(k, np.int64)
    picked = np.zeros(n, np.bool_)
    for j in range(k):
        best = -1
        best_gain = -1
        for v in range(n):
            if not picked[v] and degree[v] > best_gain:
                best = v
                best_gain = degree[v]
        chosen[j] = best
        gains[j] = best_gain
        picked[best] = True
        for i in range(node_ptr[best], node_ptr[best + 1]):
            s = node_sets[i]
            if not covered[s]:
                covered[s] = True
                for t in range(set_ptr[s], set_ptr[s + 1]):
                    degree[nodes[t]] -= 1
    return chosen, gains


def max_coverage(set_ptr: np.ndarray, nodes: np.ndarray, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Greedy ``k`` nodes covering the most RR sets: (nodes, marginal sets covered by each).

    Ties go to the lowest node index, so the result is deterministic.

    Examples
    --------
    >>> ptr = np.array([0, 2, 3, 5]); flat = np.array([0, 1, 1, 2, 3])
    >>> [a.tolist() for a in max_coverage(ptr, flat, 4, 2)]
    [[1, 2], [2, 1]]
    """
    return _max_coverage(set_ptr, nodes, int(n), int(k))
