"""Reverse-reachable (RR) sets and greedy maximum coverage, the sampling core of IMM.

An RR set of a random root ``v`` is the set of nodes that reach ``v`` in one
random live-edge graph: for independent cascade each in-edge ``u -> v`` is
live with probability ``p(u, v)``; for linear threshold (uniform random
thresholds) each node keeps at most one in-edge, ``u -> v`` with probability
``w(u, v)`` (Kempe et al. 2003).  ``n * Pr[S hits a random RR set]`` is the
expected spread of ``S`` (Borgs et al. 2014).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from numba import njit

from diffusio.spread.graph import Graph
from diffusio.spread.models.cascade import expand_live_edges
from diffusio.spread.prefetch import prefetch_queue
from diffusio.spread.rng import below, uniform
from diffusio.spread.scratch import borrowed, claim_marks, lean_kernel, node_index_dtype, stamps

IC, LT = 0, 1


def reverse_edges(graph: Graph, values) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """In-edge CSR: row ``v`` lists the sources ``u`` of edges ``u -> v`` and their ``values``;
    then the one value every edge shares (or -1).  A uniform value keeps no per-edge array (800 MB
    of float64 on a 10^8-edge graph), and sources are int32 where the node count allows."""
    order = np.argsort(graph.indices, kind="stable")
    indptr = np.zeros(graph.n_nodes + 1, np.int64)
    np.cumsum(np.bincount(graph.indices, minlength=graph.n_nodes), out=indptr[1:])
    sources = graph.edge_sources[order].astype(node_index_dtype(graph.n_nodes))
    values = np.asarray(values, np.float64)
    if values.ndim == 0 or (values.size and np.all(values == values.flat[0])):
        return indptr, sources, np.zeros(0), float(values.flat[0]) if values.size else 0.0
    return indptr, sources, np.ascontiguousarray(values[order]), -1.0


@lean_kernel
def _rr_sets(rev_indptr, rev_sources, rev_values, uniform_p, kind, count, state, set_ptr, nodes, stamp, queue, mark0,
             carry):
    """Append up to ``count`` RR sets to ``nodes``; set ``s`` marks its nodes with ``mark0 + s + 1``.
    IC with one probability ``uniform_p`` for every edge (else -1: ``rev_values``) jumps over a
    hub's in-edges to the next live one (geometric gaps), as the forward cascade does.
    Returns (sets written, carry): a set that did not fit stays in ``queue[:carry]`` and is the
    first one written by the next call (after the caller has grown ``nodes``), so the random
    stream is never replayed.  ``stamp`` and ``queue`` are per-node work arrays kept between calls."""
    n = rev_indptr.size - 1
    written = 0
    used = set_ptr[0]
    rng = state
    log_q = np.log1p(-uniform_p) if 0.0 <= uniform_p < 1.0 else -np.inf
    for s in range(count):
        if s == 0 and carry > 0:
            tail = carry
        else:
            mark = mark0 + s + 1
            root = below(rng, n)
            stamp[root] = mark
            queue[0] = root
            tail = 1
            head = 0
            while head < tail:
                prefetch_queue(rev_indptr, rev_sources, queue, head, tail)
                v = queue[head]
                head += 1
                lo = rev_indptr[v]
                hi = rev_indptr[v + 1]
                if kind == IC:
                    tail = expand_live_edges(rev_sources, lo, hi, rev_values, uniform_p, log_q, rng, stamp, mark,
                                             queue, tail)
                else:
                    # live-edge LT: pick in-edge e with probability w_e, none with 1 - sum w
                    x = uniform(rng)
                    acc = 0.0
                    for e in range(lo, hi):
                        acc += uniform_p if uniform_p >= 0.0 else rev_values[e]
                        if x < acc:
                            u = rev_sources[e]
                            if stamp[u] != mark:
                                stamp[u] = mark
                                queue[tail] = u
                                tail += 1
                            break
        if used + tail > nodes.size:
            return written, tail
        for i in range(tail):
            nodes[used + i] = queue[i]
        used += tail
        written += 1
        set_ptr[written] = used
    return written, 0


RR_BLOCK = 4096  # RR sets per block; block b draws from its own stream, so blocks can run anywhere
START_ROOM = 8   # room for nodes per set in a new block's flat array (it doubles as needed)


def rr_block(rev: tuple, kind: int, count: int, state_word: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` RR sets from one random stream: (set pointers, flat nodes), CSR style.

    Nodes are int32 where the node count allows (half the memory of a pool that can reach 10^9
    entries). The flat array starts with room for START_ROOM nodes a set and doubles when a set
    does not fit, and is trimmed on return when the room left over is large; the per-node work
    arrays come from a pool kept with the reverse graph (at 10^7 nodes, allocating them for every
    block of sets cost far more than drawing the sets)."""
    n = rev[0].size - 1
    dtype = node_index_dtype(n)
    state = np.array([state_word], np.uint64)
    set_ptr = np.zeros(count + 1, np.int64)
    nodes = np.empty(max(START_ROOM * count, 1 << 12), dtype)

    def make() -> tuple:
        return stamps(n), np.empty(max(n, 1), dtype)

    with borrowed(rev[0], "rr-sets", make) as (stamp, queue):
        base = claim_marks(stamp, count)
        done, carry = 0, 0
        while done < count:
            written, carry = _rr_sets(*rev, kind, count - done, state, set_ptr[done:], nodes, stamp, queue,
                                      base + done, carry)
            done += int(written)
            if done < count:  # the next set did not fit: double the room (at least enough for it)
                nodes = np.concatenate([nodes, np.empty(max(nodes.size, int(carry)), dtype)])
    used = int(set_ptr[count])
    # a view would keep the whole doubled room alive as long as the pool holds the block
    return set_ptr, nodes[:used].copy() if nodes.size - used > max(used // 4, 1 << 12) else nodes[:used]


class RRSampler:
    """Grows a pool of RR sets for one graph and diffusion model, reproducibly from ``seed``.

    Sets are drawn in blocks of :data:`RR_BLOCK`; block ``b`` uses word ``b`` of
    ``SeedSequence(seed)`` as its stream, so the pool is the same whether the blocks run here
    (on ``threads`` threads) or on the workers of a Dask ``client``.  A request is rounded up to
    whole blocks: the pool may hold more sets than asked for, never fewer.

    Examples
    --------
    >>> import networkx as nx
    >>> from diffusio.spread import as_graph
    >>> g = as_graph(nx.star_graph(4))
    >>> sampler = RRSampler(g, np.ones(g.indices.size), IC, seed=0)
    >>> sampler.extend(10)
    >>> sampler.size == RR_BLOCK, int(sampler.sets()[0][-1]) == 5 * RR_BLOCK   # p = 1: every set is the star
    (True, True)
    """

    def __init__(self, graph: Graph, edge_values, kind: int, seed=0, *, client=None, threads: int = 1):
        """``edge_values``: the probability (IC) or weight (LT) of every CSR edge, or one number for all."""
        self.n = graph.n_nodes
        self.rev = reverse_edges(graph, edge_values)
        self.kind, self.client, self.threads = kind, client, max(1, int(threads))
        self.seed = np.random.SeedSequence(seed)
        self.blocks_drawn = 0
        self._shipped = None
        self._pool = (np.zeros(1, np.int64), np.zeros(0, node_index_dtype(self.n)))

    @property
    def size(self) -> int:
        return len(self._pool[0]) - 1

    def extend(self, count: int, check: Callable[[int, float], None] | None = None) -> None:
        """Add at least ``count`` more RR sets to the pool (whole blocks).  ``check(total sets, mean
        nodes per set)`` is called as blocks arrive (a few at a time), so that a memory check sees
        the sizes really drawn: on a graph with hubs most sets hold one node and 1% hold 85,000.
        The new blocks are joined to the pool at the end and then dropped, so the sets are held
        once (twice only while they are joined)."""
        if count <= 0:
            return
        first, last = self.blocks_drawn, self.blocks_drawn + -(-int(count) // RR_BLOCK)
        words = self.seed.generate_state(last, np.uint64)[first:last]
        step = len(words) if self.client is not None else 4 * self.threads
        new: list[tuple[np.ndarray, np.ndarray]] = []
        nodes_drawn = self._pool[1].size  # running total: no rescan per chunk
        for i in range(0, len(words), step):
            chunk = self._draw(words[i:i + step])
            new += chunk
            nodes_drawn += sum(nodes.size for _, nodes in chunk)
            if check is not None:
                check(last * RR_BLOCK, nodes_drawn / ((first + len(new)) * RR_BLOCK))
        ptr, flat = self._pool
        ptrs, offset = [ptr], int(ptr[-1])
        for block_ptr, _ in new:
            ptrs.append(block_ptr[1:] + offset)
            offset += int(block_ptr[-1])
        flats = [flat] + [nodes for _, nodes in new]
        self._pool = (np.concatenate(ptrs), np.concatenate(flats))
        self.blocks_drawn = last

    def _draw(self, words: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        if self.client is not None:
            from diffusio.cluster import check_workers, gather

            if self._shipped is None:
                check_workers(self.client)
                self._shipped = self.client.scatter([self.rev], broadcast=True, hash=False)[0]
            futures = self.client.map(rr_block, [self._shipped] * len(words), [self.kind] * len(words),
                                      [RR_BLOCK] * len(words), [int(w) for w in words], pure=False, retries=2)
            return gather(self.client, futures, "RR sets on the cluster")
        if self.threads > 1 and len(words) > 1:  # the kernel releases the GIL
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(self.threads) as pool:
                return list(pool.map(lambda w: rr_block(self.rev, self.kind, RR_BLOCK, int(w)), words))
        return [rr_block(self.rev, self.kind, RR_BLOCK, int(w)) for w in words]

    def sets(self) -> tuple[np.ndarray, np.ndarray]:
        """(set pointers, flat node array) of the pool, CSR style."""
        return self._pool

    def mean_set_size(self, probe: int = 64) -> float:
        """Mean nodes per RR set: of the pool, or (empty pool) of ``probe`` sets drawn from a stream
        of their own and thrown away, so the pool is the same either way.  A first guess only: the
        sizes are heavy-tailed, so :meth:`extend` checks again on the sets it draws."""
        if self.size:
            return max(1.0, self._pool[1].size / self.size)
        word = int(self.seed.generate_state(1, np.uint64)[0] ^ np.uint64(0x9E3779B97F4A7C15))
        ptr, _ = rr_block(self.rev, self.kind, probe, word)
        return max(1.0, float(ptr[-1]) / probe)


@njit(cache=True, nogil=True)
def _max_coverage(set_ptr, nodes, n, k, node_sets):
    n_sets = set_ptr.size - 1
    degree = np.zeros(n, np.int64)
    for i in range(nodes.size):
        degree[nodes[i]] += 1
    # node -> sets index
    node_ptr = np.zeros(n + 1, np.int64)
    for v in range(n):
        node_ptr[v + 1] = node_ptr[v] + degree[v]
    fill = node_ptr[:-1].copy()
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
    # the node -> sets index is as long as the pool: int32 set numbers where they fit
    node_sets = np.empty(nodes.size, np.int32 if set_ptr.size <= np.iinfo(np.int32).max else np.int64)
    return _max_coverage(set_ptr, nodes, int(n), int(k), node_sets)
