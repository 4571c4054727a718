"""Work arrays that the cascade kernels reuse across calls on the same graph.

A cascade on a big graph often touches a few dozen nodes, so allocating (and page-faulting) a
per-node array on every call would cost more than the cascade itself.  A graph keeps a small pool
of work arrays instead, one set per thread that has run at the same time, freed with the graph.
Marks instead of resets: a per-node ``stamp`` equals the trial's mark when the node is active in
that trial, and every call takes fresh marks (:func:`claim_marks`), so nothing is ever cleared
between trials or calls.
"""

from __future__ import annotations

import threading
import weakref
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
from numba import njit

_POOLS: dict[int, dict[str, list]] = {}  # id(owner) -> key -> free sets; dropped when the owner is collected
_LOCK = threading.Lock()
MARK_LIMIT = np.iinfo(np.int32).max


@contextmanager
def borrowed(owner: object, key: str, make: Callable[[], tuple]) -> Iterator[tuple]:
    """A set of work arrays for ``owner`` (a graph, or an array such as a reverse graph's indptr)
    that no other thread holds: from the owner's pool, or ``make()``."""
    with _LOCK:
        pools = _POOLS.get(id(owner))
        if pools is None:
            pools = _POOLS[id(owner)] = {}
            weakref.finalize(owner, _POOLS.pop, id(owner), None)
        pool = pools.setdefault(key, [])
        arrays = pool.pop() if pool else None
    if arrays is None:
        arrays = make()
    try:
        yield arrays
    finally:
        with _LOCK:
            pool.append(arrays)


# The hot kernels compile without numba's reference counting: with it, each call of a helper that
# takes arrays (a draw, a frontier node's expansion) costs atomic increments and decrements, about
# half the time of a small cascade.  Such a kernel allocates nothing: every array comes from its caller.
lean_kernel = njit(cache=True, nogil=True, _nrt=False)


def node_index_dtype(n: int) -> type:
    """int32 node positions where they fit (half the memory and page faults of int64)."""
    return np.int32 if n < MARK_LIMIT else np.int64


def rng_cell() -> np.ndarray:
    """The one-word random state a kernel advances in place (see diffusio.spread.rng)."""
    return np.empty(1, np.uint64)


def stamps(n: int) -> np.ndarray:
    """Per-node int32 marks plus one slot (the last) that holds the last mark given out."""
    return np.zeros(n + 1, np.int32)


@njit(cache=True, nogil=True)
def claim_marks(stamp, trials):
    """The mark before this call's ``trials`` fresh ones (trial ``t`` uses base + t + 1); the marks
    are reserved in ``stamp[-1]``.  When they would overflow, every stamp is cleared first."""
    base = stamp[-1]
    if base > 2147483647 - trials - 1:
        stamp[:] = 0
        base = 0
    stamp[-1] = base + trials
    return base
