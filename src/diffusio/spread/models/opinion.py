"""Binary opinion dynamics: voter, majority rule and threshold adoption.

Every node holds opinion ``no`` (0) or ``yes`` (1) and listens to its
in-neighbours (the nodes with an edge pointing to it; plain neighbours in an
undirected graph).  All nodes update synchronously from the opinions at the
start of the step.  ``seeds`` are the nodes that start with ``yes``; without
seeds each node starts ``yes`` with probability ``initial_yes``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from diffusio.spread.graph import Graph
from diffusio.spread.models.base import Model
from diffusio.spread.params import check_node_param, check_number, node_array
from diffusio.spread.rng import below, uniform

VOTER, MAJORITY, THRESHOLD = 0, 1, 2


@njit(cache=True, nogil=True)
def _initial_opinions(opinion, seed_row, initial_yes, rng):
    if seed_row.size > 0:
        opinion[:] = 0
        for s in seed_row:
            opinion[s] = 1
    else:
        for i in range(opinion.size):
            opinion[i] = 1 if uniform(rng) < initial_yes else 0
    return opinion.sum()


@njit(cache=True, nogil=True)
def opinion_kernel(rule, in_indptr, in_indices, thresholds, initial_yes, seed_matrix, rng_states, max_steps,
                   counts, steps, final, record_final):
    n = in_indptr.size - 1
    opinion = np.zeros(n, np.int8)
    updated = np.zeros(n, np.int8)
    rng = np.empty(1, np.uint64)
    for t in range(rng_states.size):
        rng[0] = rng_states[t]
        yes = _initial_opinions(opinion, seed_matrix[t], initial_yes, rng)
        counts[t, 0, 0] = n - yes
        counts[t, 0, 1] = yes
        step = 0
        while step < max_steps:
            if rule == VOTER and (yes == 0 or yes == n):
                break  # consensus is absorbing
            changed = 0
            yes = 0
            for v in range(n):
                lo = in_indptr[v]
                degree = in_indptr[v + 1] - lo
                new = opinion[v]
                if degree > 0:
                    if rule == VOTER:
                        new = opinion[in_indices[lo + below(rng, degree)]]
                    else:
                        agree = 0
                        for e in range(lo, lo + degree):
                            agree += opinion[in_indices[e]]
                        if rule == MAJORITY:
                            if 2 * agree > degree:
                                new = 1
                            elif 2 * agree < degree:
                                new = 0
                        elif opinion[v] == 0 and agree >= thresholds[v] * degree:
                            new = 1
                updated[v] = new
                changed += new != opinion[v]
                yes += new
            opinion[:] = updated
            step += 1
            counts[t, step, 0] = n - yes
            counts[t, step, 1] = yes
            if changed == 0 and rule != VOTER:
                break  # majority and threshold are deterministic: a fixed point stays fixed
        steps[t] = step
        if record_final:
            final[t, :] = opinion


@dataclass(frozen=True)
class _Opinion(Model):
    initial_yes: float = 0.5
    states = ("no", "yes")
    seeding = "fraction"
    _rule = VOTER

    def __post_init__(self):
        check_number("initial_yes", self.initial_yes, 0.0, 1.0)

    @property
    def initial_fraction(self) -> float:
        return float(self.initial_yes)

    def _thresholds(self, graph: Graph) -> np.ndarray:
        return np.zeros(graph.n_nodes)

    def prepare(self, graph: Graph) -> tuple:
        in_indptr, in_indices, _ = graph.reverse_csr
        return in_indptr, in_indices, self._thresholds(graph)

    def run(self, graph, prepared, seed_matrix, rng_states, max_steps, counts, steps, final, record_final,
            cut_short):
        in_indptr, in_indices, thresholds = prepared
        opinion_kernel(self._rule, in_indptr, in_indices, thresholds, float(self.initial_yes), seed_matrix,
                       rng_states, max_steps, counts, steps, final, record_final)


@dataclass(frozen=True)
class Voter(_Opinion):
    """Voter model: every step each node copies the opinion of one random in-neighbour.

    Parameters
    ----------
    initial_yes : float
        Without seeds, probability that a node starts with ``yes``.

    Examples
    --------
    >>> import networkx as nx
    >>> from diffusio import spread
    >>> result = spread.simulate(nx.complete_graph(10), spread.Voter(), trials=5, seed=0, max_steps=1000)
    >>> sorted(set(result.curves.groupby("trial")["yes"].last()) - {0, 10})   # consensus every time
    []
    """


@dataclass(frozen=True)
class MajorityRule(_Opinion):
    """Majority rule: each node takes the opinion held by most of its in-neighbours (ties: keeps its own).

    Examples
    --------
    >>> import networkx as nx
    >>> from diffusio import spread
    >>> result = spread.simulate(nx.complete_graph(5), spread.MajorityRule(), seeds=[0, 1, 2], trials=1)
    >>> result.curves["yes"].tolist()
    [3, 5, 5]
    """

    _rule = MAJORITY


@dataclass(frozen=True)
class ThresholdOpinion(_Opinion):
    """Threshold adoption (Granovetter): a ``no`` node switches to ``yes`` for good once at
    least a fraction ``threshold`` of its in-neighbours say ``yes``.

    Parameters
    ----------
    threshold : float or dict {node: float}
        Fraction of ``yes`` in-neighbours needed, in [0, 1].
    initial_yes : float
        Without seeds, probability that a node starts with ``yes``.

    Examples
    --------
    >>> import networkx as nx
    >>> from diffusio import spread
    >>> result = spread.simulate(nx.path_graph(5), spread.ThresholdOpinion(threshold=0.5), seeds=[0], trials=1)
    >>> result.curves["yes"].tolist()
    [1, 2, 3, 4, 5, 5]
    """

    threshold: object = 0.5
    _rule = THRESHOLD

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "threshold", check_node_param("threshold", self.threshold, high=1.0))

    def _thresholds(self, graph: Graph) -> np.ndarray:
        return node_array(graph, "threshold", self.threshold)
