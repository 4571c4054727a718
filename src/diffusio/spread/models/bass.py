"""Bass diffusion of an innovation: the aggregate curve and its network version.

In the Bass model a potential adopter adopts at rate ``p`` (innovation, from
outside: advertising) plus ``q`` times the adopted share of its contacts
(imitation).  Without a network the adopted share ``F(t)`` has a closed form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit

from diffusio.spread.graph import Graph
from diffusio.spread.models.base import Model
from diffusio.spread.params import check_number
from diffusio.spread.rng import uniform


def bass_curve(p: float, q: float, times, market_size: float = 1.0) -> pd.DataFrame:
    """Closed-form Bass adoption curve.

    ``F(t) = (1 - exp(-(p+q) t)) / (1 + (q/p) exp(-(p+q) t))`` solves
    ``dF/dt = (p + q F)(1 - F)`` with ``F(0) = 0``.

    Parameters
    ----------
    p : float
        Coefficient of innovation, > 0.
    q : float
        Coefficient of imitation, >= 0.
    times : array-like of float
        Times at which to evaluate the curve.
    market_size : float
        Number of potential adopters ``m``.

    Returns
    -------
    pandas.DataFrame
        Columns ``time``, ``adopted`` (cumulative, ``m F(t)``) and ``rate``
        (new adoptions per unit time, ``m dF/dt``).

    Examples
    --------
    >>> curve = bass_curve(p=0.03, q=0.38, times=[0, 5, 10])
    >>> curve["adopted"].round(3).tolist()
    [0.0, 0.331, 0.813]
    """
    p = check_number("p", p, 1e-12)
    q = check_number("q", q)
    market_size = check_number("market_size", market_size)
    t = np.asarray(times, dtype=np.float64)
    decay = np.exp(-(p + q) * t)
    share = (1.0 - decay) / (1.0 + (q / p) * decay)
    rate = (p + q * share) * (1.0 - share)
    return pd.DataFrame({"time": t, "adopted": market_size * share, "rate": market_size * rate})


@njit(cache=True, nogil=True)
def bass_network_kernel(indptr, indices, in_degree, p, q, seed_matrix, rng_states, max_steps, counts, steps, final,
                        record_final):
    n = indptr.size - 1
    adopted = np.zeros(n, np.int8)
    adopted_neighbours = np.zeros(n, np.int64)
    waiting = np.empty(n, np.int64)  # potential adopters, compacted every step
    newcomers = np.empty(n, np.int64)
    rng = np.empty(1, np.uint64)
    for t in range(rng_states.size):
        rng[0] = rng_states[t]
        adopted[:] = 0
        adopted_neighbours[:] = 0
        n_new = 0
        for s in seed_matrix[t]:
            if adopted[s] == 0:
                adopted[s] = 1
                newcomers[n_new] = s
                n_new += 1
        n_wait = 0
        for v in range(n):
            if adopted[v] == 0:
                waiting[n_wait] = v
                n_wait += 1
        step = 0
        while True:
            for i in range(n_new):  # newcomers now count towards their out-neighbours' imitation
                u = newcomers[i]
                for e in range(indptr[u], indptr[u + 1]):
                    adopted_neighbours[indices[e]] += 1
            counts[t, step, 0] = n_wait
            counts[t, step, 1] = n - n_wait
            if n_wait == 0 or step >= max_steps:
                break
            n_new = 0
            keep = 0
            for i in range(n_wait):
                v = waiting[i]
                chance = p
                if in_degree[v] > 0:
                    chance += q * adopted_neighbours[v] / in_degree[v]
                if uniform(rng) < chance:
                    newcomers[n_new] = v
                    n_new += 1
                else:
                    waiting[keep] = v
                    keep += 1
            n_wait = keep
            for i in range(n_new):
                adopted[newcomers[i]] = 1
            step += 1
        steps[t] = step
        if record_final:
            for i in range(n):
                final[t, i] = adopted[i]


@dataclass(frozen=True)
class Bass(Model):
    """Bass adoption on a network (discrete time).

    At each step a potential adopter adopts with probability
    ``p + q * (adopted in-neighbours) / (in-neighbours)``: ``p`` is the pull of
    outside influence, ``q`` imitation of its contacts.  On a complete graph
    this is the discrete Bass recursion ``F' = F + (1 - F)(p + q F)``.

    Parameters
    ----------
    p : float
        Coefficient of innovation, in [0, 1].
    q : float
        Coefficient of imitation, in [0, 1]; ``p + q`` must be <= 1.

    Examples
    --------
    >>> import networkx as nx
    >>> from diffusio import spread
    >>> result = spread.simulate(nx.complete_graph(50), spread.Bass(p=0.05, q=0.4), trials=20, seed=0,
    ...                          max_steps=100)
    >>> int(result.summary()["adopted_mean"].iloc[-1])
    50
    """

    p: float = 0.03
    q: float = 0.38
    states = ("potential", "adopted")
    seeding = "none"

    def __post_init__(self):
        check_number("p", self.p, 0.0, 1.0)
        check_number("q", self.q, 0.0, 1.0)
        check_number("p + q", self.p + self.q, 0.0, 1.0)

    def prepare(self, graph: Graph) -> tuple:
        return (graph.in_degree.astype(np.int64),)

    def run(self, graph, prepared, seed_matrix, rng_states, max_steps, counts, steps, final, record_final,
            cut_short):
        (in_degree,) = prepared
        bass_network_kernel(graph.indptr, graph.indices, in_degree, float(self.p), float(self.q), seed_matrix,
                            rng_states, max_steps, counts, steps, final, record_final)
