"""Discrete-time compartmental epidemics: SI, SIS, SIR and SEIR.

One step updates every node synchronously from the states at the start of the
step: each infectious node infects each susceptible out-neighbour with the
edge's transmission probability ``beta``, then recovers with its node's
probability ``gamma``; exposed nodes become infectious with probability
``sigma``.  Only the infectious list is visited, never the whole graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from diffusio.spread.graph import Graph
from diffusio.spread.models.base import Model
from diffusio.spread.models.cascade import SKIP_DEGREE
from diffusio.spread.params import (NO_EDGE_VALUES, check_edge_param, check_node_param, edge_array, node_array,
                                    uniform_value)
from diffusio.spread.rng import geometric_skip, uniform

S, E, I, R = 0, 1, 2, 3
NEVER = -1  # recovery target of SI: infectious forever


# One compiled loop on purpose: the per-trial state (frontier, pending marks, counts) lives in this
# frame; splitting it would pass a dozen arrays through every call of the hot loop.
@njit(cache=True, nogil=True)
def compartmental_kernel(indptr, indices, beta, uniform_beta, gamma, sigma, with_exposed, recover_to,
                         seed_matrix, rng_states, max_steps, counts, steps, final, record_final):
    n = indptr.size - 1
    state = np.zeros(n, np.int8)
    infected = np.empty(n, np.int64)
    exposed = np.empty(n, np.int64)
    newcomers = np.empty(n, np.int64)
    touched = np.empty(n, np.int64)  # nodes that left S in this trial, reset to S afterwards
    ever = np.zeros(n, np.int64)     # == trial + 1 once the node is in ``touched``
    pending = np.zeros(n, np.int64)  # == step mark when already infected during this step
    marker = 0
    tally = np.zeros(4, np.int64)
    rng = np.empty(1, np.uint64)
    log_q = np.log1p(-uniform_beta) if 0.0 <= uniform_beta < 1.0 else -np.inf
    first_state = E if with_exposed else I
    for t in range(rng_states.size):
        rng[0] = rng_states[t]
        mark = t + 1
        n_inf = 0
        n_exp = 0
        n_touched = 0
        tally[:] = 0
        tally[S] = n
        for s in seed_matrix[t]:
            if state[s] == S:  # seeds start infectious (SEIR too)
                state[s] = I
                infected[n_inf] = s
                n_inf += 1
                touched[n_touched] = s
                n_touched += 1
                ever[s] = mark
                tally[S] -= 1
                tally[I] += 1
        for c in range(4):
            counts[t, 0, c] = tally[c]
        step = 0
        while (n_inf > 0 or n_exp > 0) and step < max_steps:
            marker += 1
            n_new = 0
            keep = 0
            for i in range(n_inf):
                u = infected[i]
                lo = indptr[u]
                hi = indptr[u + 1]
                susceptible_left = False
                if uniform_beta >= 0.0 and recover_to != NEVER and hi - lo >= SKIP_DEGREE:
                    gap = geometric_skip(rng, log_q)
                    while gap < hi - lo:
                        v = indices[lo + gap]
                        if state[v] == S and pending[v] != marker:
                            pending[v] = marker
                            newcomers[n_new] = v
                            n_new += 1
                        lo = lo + gap + 1
                        gap = geometric_skip(rng, log_q)
                else:
                    for e in range(lo, hi):
                        v = indices[e]
                        if state[v] == S and pending[v] != marker:
                            susceptible_left = True
                            if uniform(rng) < (uniform_beta if uniform_beta >= 0.0 else beta[e]):
                                pending[v] = marker
                                newcomers[n_new] = v
                                n_new += 1
                if recover_to == NEVER:
                    # SI: a node with no susceptible neighbour left can never infect again
                    if susceptible_left:
                        infected[keep] = u
                        keep += 1
                elif uniform(rng) < gamma[u]:
                    state[u] = recover_to
                    tally[I] -= 1
                    tally[recover_to] += 1
                else:
                    infected[keep] = u
                    keep += 1
            n_inf = keep
            if with_exposed:
                keep = 0
                for i in range(n_exp):
                    u = exposed[i]
                    if uniform(rng) < sigma[u]:
                        state[u] = I
                        tally[E] -= 1
                        tally[I] += 1
                        infected[n_inf] = u
                        n_inf += 1
                    else:
                        exposed[keep] = u
                        keep += 1
                n_exp = keep
            for i in range(n_new):
                v = newcomers[i]
                state[v] = first_state
                tally[S] -= 1
                tally[first_state] += 1
                if with_exposed:
                    exposed[n_exp] = v
                    n_exp += 1
                else:
                    infected[n_inf] = v
                    n_inf += 1
                if ever[v] != mark:  # first infection in this trial (SIS may reinfect)
                    ever[v] = mark
                    touched[n_touched] = v
                    n_touched += 1
            step += 1
            for c in range(4):
                counts[t, step, c] = tally[c]
        steps[t] = step
        if record_final:
            for i in range(n):
                final[t, i] = state[i]
        for i in range(n_touched):  # back to all-susceptible for the next trial
            state[touched[i]] = S


@dataclass(frozen=True)
class _Compartmental(Model):
    """One kernel for SI, SIS, SIR and SEIR; each model declares only the parameters it has
    (SI never recovers: gamma 0; only SEIR has an exposed stage: sigma 1 elsewhere)."""

    beta: object = 0.05
    _exposed = False
    _recover_to = R

    @property
    def always_ends(self) -> bool:
        """An epidemic ends once nobody is exposed or infected; that is sure when every node recovers
        (and every exposed node turns infectious) with one fixed positive probability per step."""
        rates = [getattr(self, name) for name in ("gamma", "sigma") if hasattr(self, name)]
        return (bool(rates) and self._recover_to == R and   # SIS reinfects: it may never end
                all(isinstance(r, (int, float)) and not isinstance(r, bool) and r > 0 for r in rates))

    def __post_init__(self):
        object.__setattr__(self, "beta", check_edge_param("beta", self.beta, high=1.0))
        for name in ("gamma", "sigma"):
            if hasattr(self, name):
                object.__setattr__(self, name, check_node_param(name, getattr(self, name), high=1.0))

    code_names = ("S", "E", "I", "R")

    @property
    def state_codes(self) -> tuple[int, ...]:
        return tuple(self.code_names.index(name) for name in self.states)

    def prepare(self, graph: Graph) -> tuple:
        uniform_beta = uniform_value(self.beta)  # a uniform beta needs no per-edge array
        return ((NO_EDGE_VALUES if uniform_beta >= 0 else edge_array(graph, "beta", self.beta, high=1.0)),
                uniform_beta,
                node_array(graph, "gamma", getattr(self, "gamma", 0.0)),
                node_array(graph, "sigma", getattr(self, "sigma", 1.0)))

    def run(self, graph, prepared, seed_matrix, rng_states, max_steps, counts, steps, final, record_final,
            cut_short):
        beta, uniform_beta, gamma, sigma = prepared
        compartmental_kernel(graph.indptr, graph.indices, beta, uniform_beta, gamma, sigma, self._exposed,
                             self._recover_to, seed_matrix, rng_states, max_steps, counts, steps, final,
                             record_final)


_PARAMS_DOC = """
    beta : float, "weight" or dict {(u, v): float}
        Per-step transmission probability along each edge (or the graph's edge
        weights, or one value per edge; missing edges get 0), in [0, 1].
    gamma : float or dict {node: float}
        Per-step recovery probability of each node, in [0, 1]."""


@dataclass(frozen=True)
class SI(_Compartmental):
    __doc__ = f"""Susceptible -> infected, forever (discrete time).

    Parameters
    ----------
    beta : float, "weight" or dict {{(u, v): float}}
        Per-step transmission probability along each edge, in [0, 1].

    Examples
    --------
    >>> import networkx as nx
    >>> from diffusio import spread
    >>> result = spread.simulate(nx.complete_graph(20), spread.SI(beta=0.5), seeds=[0], trials=5, seed=1)
    >>> int(result.summary()["I_mean"].iloc[-1])
    20
    """
    states = ("S", "I")
    _recover_to = NEVER


@dataclass(frozen=True)
class SIS(_Compartmental):
    __doc__ = f"""Susceptible -> infected -> susceptible again (discrete time).

    Parameters
    ----------{_PARAMS_DOC}

    Examples
    --------
    >>> import networkx as nx
    >>> from diffusio import spread
    >>> result = spread.simulate(nx.karate_club_graph(), spread.SIS(beta=0.1, gamma=0.2), seeds=[0],
    ...                          trials=10, seed=0, max_steps=50)
    >>> list(result.curves.columns)
    ['trial', 'step', 'S', 'I']
    """
    gamma: object = 0.1
    states = ("S", "I")
    _recover_to = S


@dataclass(frozen=True)
class SIR(_Compartmental):
    __doc__ = f"""Susceptible -> infected -> recovered (discrete time).

    Parameters
    ----------{_PARAMS_DOC}

    Examples
    --------
    >>> import networkx as nx
    >>> from diffusio import spread
    >>> result = spread.simulate(nx.karate_club_graph(), spread.SIR(beta=0.05, gamma=0.1), seeds=[0],
    ...                          trials=100, seed=0)
    >>> row = result.summary().iloc[-1]
    >>> bool(row["R_lower"] <= row["R_mean"] <= row["R_upper"])
    True
    """
    gamma: object = 0.1
    states = ("S", "I", "R")


@dataclass(frozen=True)
class SEIR(_Compartmental):
    __doc__ = f"""Susceptible -> exposed -> infected -> recovered (discrete time).

    Parameters
    ----------{_PARAMS_DOC}
    sigma : float or dict {{node: float}}
        Per-step probability that an exposed node becomes infectious, in [0, 1].

    Examples
    --------
    >>> import networkx as nx
    >>> from diffusio import spread
    >>> result = spread.simulate(nx.karate_club_graph(), spread.SEIR(beta=0.1, gamma=0.1, sigma=0.5),
    ...                          seeds=[0], trials=10, seed=0)
    >>> list(result.curves.columns)
    ['trial', 'step', 'S', 'E', 'I', 'R']
    """
    gamma: object = 0.1
    sigma: object = 0.5
    states = ("S", "E", "I", "R")
    _exposed = True
