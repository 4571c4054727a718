"""Influence maximisation: choose k seed nodes with the largest expected IC / LT spread.

Methods
-------
``degree`` : the k highest out-degree nodes (baseline).
``degree-discount`` : Chen, Wang & Yang (KDD 2009), degree discounted by already chosen neighbours.
``celf`` : lazy greedy (Leskovec et al., KDD 2007) over Monte Carlo estimates from our IC / LT kernels,
    with common random numbers (every estimate uses the same trial streams).
``imm`` : Tang, Shi & Xiao (SIGMOD 2015), reverse-reachable sets; returns a (1 - 1/e - eps)-approximate
    seed set with probability >= 1 - 1/n^ell.  The final RR sets are drawn afresh after the lower bound
    phase, the fix of Chen (2018, "An issue in the martingale analysis of IMM").
"""

from __future__ import annotations

import heapq
import math
import os
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import gammaln

from diffusio._resources import check_memory
from diffusio.errors import UsageError
from diffusio.spread.graph import Graph, as_graph
from diffusio.spread.models import IndependentCascade, LinearThreshold, Model
from diffusio.spread.params import check_number, uniform_value
from diffusio.spread.rng import trial_states
from diffusio.spread.scratch import node_index_dtype
from diffusio.spread.apps.rrsets import IC, LT, RRSampler, max_coverage

METHODS = ("imm", "celf", "degree-discount", "degree")


def _check_k(graph: Graph, k) -> int:
    if isinstance(k, bool) or not isinstance(k, Integral) or not 1 <= k <= graph.n_nodes:
        raise UsageError(f"k must be between 1 and the number of nodes ({graph.n_nodes}), got {k!r}")
    return int(k)


def _check_model(model) -> Model:
    if not isinstance(model, (IndependentCascade, LinearThreshold)):
        raise UsageError("influence maximisation needs spread.IndependentCascade(p) or spread.LinearThreshold(); "
                         f"got {model!r}")
    if isinstance(model, LinearThreshold) and model.threshold is not None:
        raise UsageError("influence maximisation under LT assumes uniform random thresholds; "
                         "use spread.LinearThreshold(threshold=None)")
    return model


class SpreadOracle:
    """Mean final spread of seed sets, estimated with fixed trial streams (common random numbers).

    Every call reuses the same ``trials`` streams, so differences between seed
    sets are not blurred by independent noise.  Every trial runs to its end: trials still
    running after the first horizon (2,000 steps) are replayed from their own streams with room
    for all ``n`` steps a cascade can take.  A ``max_steps`` given here cuts them instead, and
    says so with a :class:`~diffusio.spread.simulate.TruncationWarning`.

    Examples
    --------
    >>> import networkx as nx
    >>> oracle = SpreadOracle(nx.path_graph(5), IndependentCascade(p=1.0), trials=10, seed=0)
    >>> oracle.mean([0])
    5.0
    """

    def __init__(self, graph: Any, model: Model, *, trials: int = 1000, seed: int | None = 0,
                 max_steps: int | None = None):
        self.graph = as_graph(graph)
        self.model = _check_model(model)
        if isinstance(trials, bool) or not isinstance(trials, Integral) or trials < 1:
            raise UsageError(f"trials must be a positive integer, got {trials!r}")
        self.prepared = model.prepare(self.graph)
        self.states = trial_states(seed, int(trials))
        self.to_the_end = max_steps is None
        self.max_steps = int(max_steps or min(self.graph.n_nodes, 2000))
        self.counts = np.empty((int(trials), self.max_steps + 1, model.n_codes), np.int32)
        self.steps = np.zeros(int(trials), np.int64)
        self.final = np.zeros((int(trials), 0), np.int8)
        self.cut_short = np.zeros(int(trials), np.bool_)
        self.evaluations = 0

    def samples(self, seeds_index) -> np.ndarray:
        """Final number of active nodes in each trial, seeds given as integer node indices."""
        seeds_index = np.asarray(seeds_index, np.int64)
        matrix = np.ascontiguousarray(np.tile(seeds_index, (self.states.size, 1)))
        self.model.run(self.graph, self.prepared, matrix, self.states, self.max_steps, self.counts, self.steps,
                       self.final, False, self.cut_short)
        self.evaluations += 1
        finals = self.counts[np.arange(self.states.size), self.steps, 1].astype(np.float64)
        running = np.flatnonzero(self.steps >= self.max_steps)
        if running.size and self.to_the_end:
            finals[running] = self._run_to_the_end(matrix[running], self.states[running])
        elif running.size:
            import warnings

            from diffusio.spread.simulate import TruncationWarning

            warnings.warn(f"{running.size} of {self.states.size} trials were still spreading at max_steps="
                          f"{self.max_steps} and were cut there, so the spread is underestimated; leave max_steps "
                          "unset to run every trial to its end", TruncationWarning, stacklevel=2)
        return finals

    def _run_to_the_end(self, matrix: np.ndarray, states: np.ndarray) -> np.ndarray:
        """Final active counts of trials replayed with room for every step a cascade on n nodes can
        take, in chunks that keep the count buffer under AUTO_MEMORY."""
        from diffusio.spread.simulate import AUTO_MEMORY

        horizon = self.graph.n_nodes * self.model.step_bound + 1
        per_trial = (horizon + 1) * self.model.n_codes * 4
        chunk = max(1, AUTO_MEMORY // per_trial)
        out = np.empty(len(states))
        for lo in range(0, len(states), chunk):
            rows = slice(lo, lo + chunk)
            m = len(states[rows])
            counts = np.empty((m, horizon + 1, self.model.n_codes), np.int32)
            steps = np.zeros(m, np.int64)
            self.model.run(self.graph, self.prepared, np.ascontiguousarray(matrix[rows]),
                           np.ascontiguousarray(states[rows]), horizon, counts, steps, self.final[:m],
                           False, np.zeros(m, np.bool_))
            out[rows] = counts[np.arange(m), steps, 1]
        return out

    def mean(self, seeds) -> float:
        """Mean spread of the seed labels ``seeds``."""
        return float(self.samples(self.graph.index_of(list(seeds))).mean())


def expected_spread(graph: Any, model: Model, seeds, *, trials: int = 1000, seed: int | None = 0,
                    confidence: float = 0.95) -> dict:
    """Monte Carlo mean spread of ``seeds`` with a Student-t confidence interval.

    Examples
    --------
    >>> import networkx as nx
    >>> expected_spread(nx.star_graph(3), IndependentCascade(p=1.0), [0], trials=5)["mean"]
    4.0
    """
    check_number("confidence", confidence, 1e-9, 1 - 1e-9)
    oracle = SpreadOracle(graph, model, trials=trials, seed=seed)
    values = oracle.samples(oracle.graph.index_of(list(seeds)))
    half = (stats.t.ppf(0.5 + confidence / 2, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size)
            if values.size > 1 else float("nan"))
    return {"mean": float(values.mean()), "lower": float(values.mean() - half), "upper": float(values.mean() + half),
            "trials": int(values.size)}


def degree_discount(graph: Any, k: int, p: float = 0.01) -> np.ndarray:
    """Chen et al.'s DegreeDiscountIC: ``dd_v = d_v - 2 t_v - (d_v - t_v) t_v p``, ``t_v`` = chosen neighbours.

    Returns integer node indices, best first (ties: lowest index).

    Examples
    --------
    >>> import networkx as nx
    >>> degree_discount(nx.star_graph(4), 2, p=0.1).tolist()   # the hub, then a leaf
    [0, 1]
    """
    graph = as_graph(graph)
    k = _check_k(graph, k)
    p = check_number("p", p, 0.0, 1.0)
    degree = graph.out_degree.astype(np.float64)
    chosen_count = np.zeros(graph.n_nodes)
    score = degree.copy()
    picked = np.zeros(graph.n_nodes, bool)
    out = []
    for _ in range(k):
        masked = np.where(picked, -np.inf, score)
        u = int(np.argmax(masked))
        out.append(u)
        picked[u] = True
        # u now influences its out-neighbours: those neighbours' discounted degree drops
        neighbours = graph.indices[graph.indptr[u]:graph.indptr[u + 1]]
        neighbours = neighbours[~picked[neighbours]]
        np.add.at(chosen_count, neighbours, 1.0)
        t = chosen_count[neighbours]
        score[neighbours] = degree[neighbours] - 2 * t - (degree[neighbours] - t) * t * p
    return np.asarray(out, np.int64)


def celf(graph: Any, model: Model, k: int, *, trials: int = 200, seed: int | None = 0
         ) -> tuple[np.ndarray, np.ndarray]:
    """Lazy greedy (CELF) over Monte Carlo spread estimates.

    Returns
    -------
    (nodes, spread) : integer node indices best first, and the estimated
    spread of the first ``i + 1`` seeds.

    Examples
    --------
    >>> import networkx as nx
    >>> nodes, spread = celf(nx.star_graph(5), IndependentCascade(p=0.5), 1, trials=100)
    >>> nodes.tolist()
    [0]
    """
    oracle = SpreadOracle(graph, _check_model(model), trials=trials, seed=seed)
    k = _check_k(oracle.graph, k)
    n = oracle.graph.n_nodes
    heap = [(-oracle.samples([v]).mean(), v, 0) for v in range(n)]
    heapq.heapify(heap)
    chosen: list[int] = []
    spread: list[float] = []
    current = 0.0
    while len(chosen) < k:
        neg_gain, v, round_ = heapq.heappop(heap)
        if round_ == len(chosen):  # gain is fresh for this round: by submodularity it is the best
            chosen.append(v)
            current += -neg_gain
            spread.append(current)
            continue
        gain = oracle.samples(chosen + [v]).mean() - current
        heapq.heappush(heap, (-gain, v, len(chosen)))
    return np.asarray(chosen, np.int64), np.asarray(spread)


def _log_binom(n: int, k: int) -> float:
    return float(gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1))


def _sampler(graph: Graph, model: Model, seed, client=None, threads: int = 1) -> RRSampler:
    if isinstance(model, IndependentCascade):
        p = uniform_value(model.p)  # one probability for every edge: no per-edge array
        return RRSampler(graph, p if p >= 0 else model.edge_probabilities(graph), IC, seed, client=client,
                         threads=threads)
    return RRSampler(graph, model.edge_influence(graph), LT, seed, client=client, threads=threads)


def imm(graph: Any, model: Model, k: int, *, epsilon: float = 0.1, ell: float = 1.0, seed: int | None = 0,
        client: Any = None, threads: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """IMM (Tang, Shi & Xiao 2015) with the Chen (2018) fresh-sample fix.

    The RR sets are drawn in seeded blocks (:class:`~diffusio.spread.apps.rrsets.RRSampler`) on
    ``threads`` local threads (default: all cores) or on the workers of a Dask ``client``; the
    seeds chosen are the same either way.

    Returns
    -------
    (nodes, spread, rr_sets) : node indices best first, the RR estimate
    ``n * coverage`` of the first ``i + 1`` seeds, and the number of RR sets
    used for the final selection.

    Examples
    --------
    >>> import networkx as nx
    >>> nodes, spread, _ = imm(nx.star_graph(5), IndependentCascade(p=0.5), 1, epsilon=0.5)
    >>> nodes.tolist()
    [0]
    """
    graph = as_graph(graph)
    model = _check_model(model)
    k = _check_k(graph, k)
    epsilon = check_number("epsilon", epsilon, 1e-6, 1.0)
    ell = check_number("ell", ell, 1e-6, 100.0)
    n = graph.n_nodes
    if n < 2:
        return np.zeros(1, np.int64), np.ones(1), 0
    ell = ell * (1 + math.log(2) / math.log(n))  # union bound over the two phases
    log_nk = _log_binom(n, k)
    eps_prime = math.sqrt(2) * epsilon
    lam_prime = ((2 + 2 * eps_prime / 3) * (log_nk + ell * math.log(n) + math.log(max(math.log2(n), 1.0001)))
                 * n / eps_prime ** 2)
    alpha = math.sqrt(ell * math.log(n) + math.log(2))
    beta = math.sqrt((1 - 1 / math.e) * (log_nk + ell * math.log(n) + math.log(2)))
    lam_star = 2 * n * ((1 - 1 / math.e) * alpha + beta) ** 2 / epsilon ** 2

    node_bytes = 2 * np.dtype(node_index_dtype(n)).itemsize

    def check(rr_sets: float, size: float) -> None:  # before each round, and as its sets arrive
        # per set a pointer and its nodes, held twice at the peaks: while new blocks are joined to
        # the pool, and beside the coverage index (int32 set numbers) during the greedy selection
        check_memory(rr_sets * (16 + node_bytes * size),
                     f"IMM at epsilon={epsilon:g} on {n:,} nodes ({rr_sets:,.0f} RR sets of about {size:,.0f} nodes)",
                     "raise epsilon (0.1 is the usual choice), or use --method celf / degree")

    threads = int(threads or os.cpu_count() or 1)
    phase1 = _sampler(graph, model, [0 if seed is None else seed, 1], client, threads)
    lower = 1.0
    for i in range(1, max(int(math.log2(n)), 2)):
        x = n / 2 ** i
        theta_i = int(math.ceil(lam_prime / x))
        check(theta_i, phase1.mean_set_size())
        phase1.extend(theta_i - phase1.size, check=check)
        _, gains = max_coverage(*phase1.sets(), n, k)
        estimate = n * gains.sum() / phase1.size
        if estimate >= (1 + eps_prime) * x:
            lower = estimate / (1 + eps_prime)
            break
    theta = int(math.ceil(lam_star / lower))
    size = phase1.mean_set_size()
    del phase1  # its sets only gave the lower bound; the final selection uses fresh ones (Chen 2018)
    check(theta, size)  # the final sets are drawn like phase 1's: the same mean size
    final = _sampler(graph, model, [0 if seed is None else seed, 2], client, threads)
    final.extend(theta, check=check)
    nodes, gains = max_coverage(*final.sets(), n, k)
    return nodes, n * np.cumsum(gains) / final.size, theta


def influence_maximization(graph: Any, model: Model, k: int, *, method: str = "imm", epsilon: float = 0.1,
                           trials: int = 200, seed: int | None = 0, eval_trials: int = 1000,
                           client: Any = None) -> pd.DataFrame:
    """Choose ``k`` seeds with one method and report the Monte Carlo spread of each prefix.

    Returns
    -------
    pandas.DataFrame
        ``rank`` (1..k), ``node`` (label), ``method_estimate`` (the method's own
        spread estimate of the first ``rank`` seeds: MC for CELF, RR coverage
        for IMM, NaN for degree heuristics) and ``spread`` (an independent Monte
        Carlo estimate of the final seed set, only in the last row; ``eval_trials``
        trials, 0 to skip).  With a Dask ``client``, IMM draws its RR sets on the cluster
        (same seeds chosen as locally; see :mod:`diffusio.spread.cluster`); the final Monte
        Carlo check runs here.  Only IMM takes a ``client``.

    Examples
    --------
    >>> import networkx as nx
    >>> table = influence_maximization(nx.karate_club_graph(), IndependentCascade(p=0.1), 2, method="imm",
    ...                                epsilon=0.2, eval_trials=100)
    >>> sorted(table.node.tolist())   # the two hubs of the karate club
    [0, 33]
    """
    graph = as_graph(graph)
    model = _check_model(model)
    k = _check_k(graph, k)
    if client is not None and method != "imm":
        raise UsageError(f"method={method!r} runs on this machine only; a cluster (client, --workers, --scheduler) "
                         "serves method='imm', whose RR sets are drawn on the workers")
    if method == "imm":
        nodes, estimate, _ = imm(graph, model, k, epsilon=epsilon, seed=seed, client=client)
    elif method == "celf":
        nodes, estimate = celf(graph, model, k, trials=trials, seed=seed)
    elif method == "degree-discount":
        p = model.p if isinstance(model, IndependentCascade) and isinstance(model.p, float) else 0.01
        nodes, estimate = degree_discount(graph, k, p), np.full(k, np.nan)
    elif method == "degree":
        nodes, estimate = np.argsort(-graph.out_degree, kind="stable")[:k], np.full(k, np.nan)
    else:
        raise UsageError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    table = pd.DataFrame({"rank": np.arange(1, k + 1), "node": graph.labels[nodes], "method_estimate": estimate,
                          "spread": np.nan})
    if eval_trials:
        # evaluation streams differ from CELF's selection streams, so CELF gets no in-sample advantage
        table.loc[k - 1, "spread"] = expected_spread(graph, model, table["node"].tolist(), trials=eval_trials,
                                                     seed=None if seed is None else seed + 7919)["mean"]
    return table
