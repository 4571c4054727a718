"""Continuous-time SIR and SIS, simulated event by event (exact Gillespie dynamics).

Each infected node draws its recovery time ``Exp(gamma)``; each of its edges
fires after ``Exp(beta)`` if that comes before the recovery.  Pending events sit
in a binary heap, so the cost is O(events log events) rather than O(nodes) per
event.  Curves are read off at times ``0, dt, 2 dt, ...``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from diffusio.spread.graph import Graph
from diffusio.spread.models.base import Model
from diffusio.spread.params import check_edge_param, check_node_param, check_number, edge_array, node_array
from diffusio.spread.rng import exponential

S, I, R = 0, 1, 2


@njit(cache=True, nogil=True)
def _heap_push(times, payloads, size, time, payload):
    i = size
    while i > 0:
        parent = (i - 1) >> 1
        if times[parent] <= time:
            break
        times[i] = times[parent]
        payloads[i] = payloads[parent]
        i = parent
    times[i] = time
    payloads[i] = payload
    return size + 1


@njit(cache=True, nogil=True)
def _heap_pop(times, payloads, size):
    """Remove the earliest event; returns (time, payload, new size)."""
    top_time = times[0]
    top_payload = payloads[0]
    size -= 1
    time = times[size]
    payload = payloads[size]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and times[child + 1] < times[child]:
            child += 1
        if times[child] >= time:
            break
        times[i] = times[child]
        payloads[i] = payloads[child]
        i = child
    if size > 0:
        times[i] = time
        payloads[i] = payload
    return top_time, top_payload, size


@njit(cache=True, nogil=True)
def _infect(u, now, indptr, indices, beta, gamma, state, recover_at, times, payloads, size, rng, reinfect):
    state[u] = I
    recover_at[u] = now + exponential(rng, gamma[u])
    if recover_at[u] < np.inf:
        size = _heap_push(times, payloads, size, recover_at[u], -1 - u)
    for e in range(indptr[u], indptr[u + 1]):
        if reinfect or state[indices[e]] == S:
            fire = now + exponential(rng, beta[e])
            if fire < recover_at[u]:
                size = _heap_push(times, payloads, size, fire, e)
    return size


# One compiled event loop on purpose (see compartmental_kernel); the heap helpers above are the
# parts that split out cleanly.
@njit(cache=True, nogil=True)
def continuous_kernel(indptr, indices, sources, beta, gamma, reinfect, dt, seed_matrix, rng_states, max_steps,
                      counts, steps, final, record_final, max_events, cut_short):
    n = indptr.size - 1
    state = np.zeros(n, np.int8)
    recover_at = np.zeros(n)
    capacity = indices.size + n + 1  # at most one pending event per edge and per node
    times = np.empty(capacity)
    payloads = np.empty(capacity, np.int64)
    touched = np.empty(n, np.int64)
    ever = np.zeros(n, np.int64)
    tally = np.zeros(3, np.int64)
    rng = np.empty(1, np.uint64)
    horizon = max_steps * dt
    recovered_state = S if reinfect else R
    for t in range(rng_states.size):
        rng[0] = rng_states[t]
        mark = t + 1
        size = 0
        n_touched = 0
        tally[:] = 0
        tally[S] = n
        for s in seed_matrix[t]:
            if state[s] == S:
                ever[s] = mark
                touched[n_touched] = s
                n_touched += 1
                tally[S] -= 1
                tally[I] += 1
                size = _infect(s, 0.0, indptr, indices, beta, gamma, state, recover_at, times, payloads, size,
                               rng, reinfect)
        grid = 0  # next grid point to record
        events = 0
        while size > 0:
            now, payload, size = _heap_pop(times, payloads, size)
            if now > horizon:
                break
            events += 1
            if events > max_events:  # rates so high that the horizon would take forever: stop here
                cut_short[t] = True
                break
            while grid * dt < now:
                for c in range(3):
                    counts[t, grid, c] = tally[c]
                grid += 1
            if payload < 0:
                u = -1 - payload
                state[u] = recovered_state
                tally[I] -= 1
                tally[recovered_state] += 1
                continue
            u = sources[payload]
            v = indices[payload]
            if state[v] == S:
                if ever[v] != mark:
                    ever[v] = mark
                    touched[n_touched] = v
                    n_touched += 1
                tally[S] -= 1
                tally[I] += 1
                size = _infect(v, now, indptr, indices, beta, gamma, state, recover_at, times, payloads, size,
                               rng, reinfect)
            if reinfect:  # SIS: the edge keeps firing until its source recovers
                fire = now + exponential(rng, beta[payload])
                if fire < recover_at[u]:
                    size = _heap_push(times, payloads, size, fire, payload)
        last = min(grid, max_steps) if not cut_short[t] else max(grid - 1, 0)
        while grid <= last:
            for c in range(3):
                counts[t, grid, c] = tally[c]
            grid += 1
        steps[t] = last
        if record_final:
            for i in range(n):
                final[t, i] = state[i]
        for i in range(n_touched):
            state[touched[i]] = S


# A trial that needs more events than this to reach its horizon (absurd rates: beta = 1e6) is cut
# short and reported, instead of running for hours (a fraction of a second per trial).
MAX_EVENTS_PER_TRIAL = 2_000_000


@dataclass(frozen=True)
class _Continuous(Model):
    beta: object = 0.05
    gamma: object = 0.1
    dt: float = 1.0
    continuous = True
    _reinfect = False

    def __post_init__(self):
        object.__setattr__(self, "beta", check_edge_param("beta", self.beta))
        object.__setattr__(self, "gamma", check_node_param("gamma", self.gamma))
        object.__setattr__(self, "dt", check_number("dt", self.dt, 1e-12))

    @property
    def time_step(self) -> float:
        return self.dt

    def prepare(self, graph: Graph) -> tuple:
        return edge_array(graph, "beta", self.beta), node_array(graph, "gamma", self.gamma)

    def run(self, graph, prepared, seed_matrix, rng_states, max_steps, counts, steps, final, record_final,
            cut_short):
        beta, gamma = prepared
        continuous_kernel(graph.indptr, graph.indices, graph.edge_sources, beta, gamma, self._reinfect, self.dt,
                          seed_matrix, rng_states, max_steps, counts, steps, final, record_final,
                          MAX_EVENTS_PER_TRIAL, cut_short)


_DOC = """
    Parameters
    ----------
    beta : float, "weight" or dict {{(u, v): float}}
        Transmission rate along each edge (events per unit time), >= 0.
    gamma : float or dict {{node: float}}
        Recovery rate of each node, >= 0.
    dt : float
        Spacing of the recorded curve; ``max_steps * dt`` is the time horizon.

    Examples
    --------
    >>> import networkx as nx
    >>> from diffusio import spread
    >>> model = spread.{name}(beta=0.3, gamma=1.0, dt=0.5)
    >>> result = spread.simulate(nx.karate_club_graph(), model, seeds=[0], trials=20, seed=0, max_steps=40)
    >>> list(result.curves.columns)
    {columns}
"""


@dataclass(frozen=True)
class ContinuousSIR(_Continuous):
    __doc__ = "Susceptible -> infected -> recovered in continuous time.\n" + _DOC.format(
        name="ContinuousSIR", columns="['trial', 'step', 'time', 'S', 'I', 'R']")
    states = ("S", "I", "R")


@dataclass(frozen=True)
class ContinuousSIS(_Continuous):
    __doc__ = "Susceptible -> infected -> susceptible in continuous time.\n" + _DOC.format(
        name="ContinuousSIS", columns="['trial', 'step', 'time', 'S', 'I']")
    states = ("S", "I")
    code_names = ("S", "I", "R")
    _reinfect = True

    @property
    def state_codes(self) -> tuple[int, ...]:
        return (S, I)
