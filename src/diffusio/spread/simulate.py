"""Monte Carlo driver: many seeded trials of a model on a graph, spread over threads."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from functools import cached_property
from numbers import Integral
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd
from scipy import stats

from diffusio._interrupts import interrupts_held
from diffusio.errors import UsageError
from diffusio.spread.graph import Graph, as_graph
from diffusio.spread.models.base import Model
from diffusio.spread.models.continuous import MAX_EVENTS_PER_TRIAL as MAX_EVENTS
from diffusio.spread.rng import mix, trial_states
from diffusio.spread.scratch import lean_kernel
from diffusio.spread.threads import run_interruptibly


@dataclass(eq=False)
class SpreadResult:
    """Outcome of :func:`simulate`.

    Attributes
    ----------
    curves : pandas.DataFrame
        Tidy counts: ``trial``, ``step`` (plus ``time`` for continuous-time
        models) and one column per state.  A trial that ends early repeats its
        last counts up to the longest trial, so every trial has every step.
        Built on first access (for a short cascade building it costs more than simulating).
    model : Model
    graph : Graph
    hit_max_steps : int
        Trials still running when ``max_steps`` was reached: their last counts are not final.
    cut_short : int
        Trials stopped before their horizon by the event budget of continuous time (rates so high
        that the horizon would take hours): their curves end early.
    trial_steps : numpy.ndarray
        The step at which each trial ended (or was cut).
    """

    model: Model
    graph: Graph
    hit_max_steps: int
    cut_short: int
    _counts: np.ndarray
    _final: np.ndarray | None
    trial_steps: np.ndarray | None = None

    @cached_property
    def curves(self) -> pd.DataFrame:
        trials, length, _ = self._counts.shape
        table = {"trial": np.repeat(np.arange(trials), length), "step": np.tile(np.arange(length), trials)}
        if self.model.continuous:
            table["time"] = table["step"] * self.model.time_step
        for k, state in enumerate(self.states):
            table[state] = self._counts[:, :, k].ravel()
        return pd.DataFrame(table)

    @property
    def states(self) -> tuple[str, ...]:
        return self.model.states

    @property
    def trials(self) -> int:
        return self._counts.shape[0]

    def warnings(self) -> list[str]:
        """What cut trials short, in words (empty when every trial ran to its end)."""
        out = []
        if self.hit_max_steps:
            out.append(f"{self.hit_max_steps} of {self.trials} trials were still changing at max_steps="
                       f"{self._counts.shape[1] - 1}: their last counts are not final; raise max_steps")
        if self.cut_short:
            out.append(f"{self.cut_short} of {self.trials} trials were stopped after {MAX_EVENTS:,} events, "
                       "before their horizon (rates this high never settle); their curves end early")
        return out

    def summary(self, confidence: float = 0.95) -> pd.DataFrame:
        """Mean count of each state per step with a confidence interval for the mean.

        Returns
        -------
        pandas.DataFrame
            ``step`` (and ``time``), then ``<state>_mean``, ``<state>_lower``,
            ``<state>_upper`` for each state (Student-t interval; NaN for one trial).
            ``.attrs["warnings"]`` lists what cut trials short (:meth:`warnings`).
        """
        if not 0.0 < confidence < 1.0:
            raise UsageError(f"confidence must be in (0, 1), got {confidence}; pass e.g. 0.95")
        counts = self._counts.astype(np.float64)
        n = counts.shape[0]
        mean = counts.mean(axis=0)
        if n > 1:
            half = stats.t.ppf(0.5 + confidence / 2.0, n - 1) * counts.std(axis=0, ddof=1) / np.sqrt(n)
        else:
            half = np.full_like(mean, np.nan)
        table = {"step": np.arange(mean.shape[0])}
        if self.model.continuous:
            table["time"] = table["step"] * self.model.time_step
        for k, state in enumerate(self.states):
            table[f"{state}_mean"] = mean[:, k]
            table[f"{state}_lower"] = mean[:, k] - half[:, k]
            table[f"{state}_upper"] = mean[:, k] + half[:, k]
        frame = pd.DataFrame(table)
        frame.attrs["warnings"] = self.warnings()
        return frame

    @property
    def final_counts(self) -> pd.DataFrame:
        """Counts of each state at the end of every trial (one row per trial)."""
        return pd.DataFrame(self._counts[:, -1, :], columns=list(self.states)).rename_axis("trial")

    @property
    def final_states(self) -> pd.DataFrame:
        """State of every node at the end of every trial: index = node labels, one column per trial."""
        if self._final is None:
            raise UsageError("final node states were not recorded; call simulate(..., final_states=True)")
        names = list(self.model.code_names)
        columns = {t: pd.Categorical.from_codes(self._final[t], categories=names) for t in range(self.trials)}
        return pd.DataFrame(columns, index=pd.Index(self.graph.labels, name="node"))

    def final_state(self, trial: int = 0) -> dict:
        """``{node label: state}`` at the end of one trial."""
        if self._final is None:
            raise UsageError("final node states were not recorded; call simulate(..., final_states=True)")
        names = self.model.code_names
        return {label: names[code] for label, code in zip(self.graph.labels.tolist(), self._final[trial].tolist())}


def random_seeds(graph: Any, k: int, seed: int | None = None) -> list:
    """``k`` distinct node labels drawn uniformly (reproducible with ``seed``).

    Examples
    --------
    >>> import networkx as nx
    >>> random_seeds(nx.path_graph(10), 3, seed=0) == random_seeds(nx.path_graph(10), 3, seed=0)
    True
    """
    graph = as_graph(graph)
    if not isinstance(k, Integral) or not 1 <= k <= graph.n_nodes:
        raise UsageError(f"k must be between 1 and the number of nodes ({graph.n_nodes}), got {k!r}")
    picks = np.random.default_rng(seed).choice(graph.n_nodes, size=int(k), replace=False)
    return graph.labels[np.sort(picks)].tolist()


def _seed_matrix(graph: Graph, model: Model, seeds, rng_states: np.ndarray) -> np.ndarray:
    trials = len(rng_states)
    if seeds is not None:
        if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
            raise UsageError(f"seeds must be a list of node labels, got {seeds!r}; pass e.g. seeds=[0]")
        index = np.unique(graph.index_of(list(seeds)))
        if index.size == 0:
            raise UsageError("seeds is empty; pass at least one node label, or seeds=None")
        return np.ascontiguousarray(np.tile(index, (trials, 1)))
    if model.seeding == "one_random":
        # patient zero differs per trial but is fixed by that trial's own stream
        picks = mix(rng_states) % np.uint64(graph.n_nodes)
        return picks.astype(np.int64).reshape(trials, 1)
    return np.zeros((trials, 0), dtype=np.int64)


def simulate(graph: Any, model: Model, seeds: Iterable | None = None, *, trials: int = 100,
             seed: int | None = None, max_steps: int | None = None, final_states: bool = False,
             workers: int | None = None, should_stop: Callable[[], bool] | None = None,
             client: Any = None, progress: bool = False) -> SpreadResult:
    """Run ``trials`` Monte Carlo trials of ``model`` on ``graph``.

    Parameters
    ----------
    graph : graph-like
        Anything :func:`as_graph` accepts (networkx graph, scipy.sparse matrix,
        edge-list path, dataset name).
    model : Model
        e.g. ``SIR(beta=0.05, gamma=0.1)``.
    seeds : list of node labels, optional
        Initially active / infected / adopted / ``yes`` nodes.  ``None``: one
        random node per trial for cascades and epidemics, nobody for ``Bass``,
        a random ``initial_yes`` share for opinion models.
    trials : int
        Number of independent trials.
    seed : int, optional
        Trial ``i`` uses stream ``SeedSequence(seed).generate_state(trials)[i]``: same seed, same
        output, whatever ``workers`` or ``trials`` is.
    max_steps : int, optional
        Steps (or grid points ``dt`` apart, in continuous time) after which a trial stops, with a
        :class:`TruncationWarning` and ``hit_max_steps`` saying how many were cut.  ``None``
        (default): every trial runs to its end for models that always end (cascades, SIR, SEIR;
        trials still running after 500 steps are rerun from their own random stream with a longer
        horizon), and stops at 500 steps for models that may never end (SIS, SI, opinions,
        continuous time).
    final_states : bool
        Keep every node's final state (memory: trials x nodes bytes).
    workers : int, optional
        Threads running trials in parallel (default: all CPU cores).
    should_stop : callable, optional
        Asked between blocks of trials; True raises :class:`~diffusio.errors.Cancelled`.
    client : dask.distributed.Client, optional
        Run the blocks of trials on this Dask cluster instead of local threads
        (:mod:`diffusio.spread.cluster`): the graph is sent to each worker once, and trial ``i``
        still uses stream ``i``, so the result is identical to a local run with the same seed.
    progress : bool
        A progress bar over the trials run on a cluster.

    Returns
    -------
    SpreadResult

    Examples
    --------
    >>> import networkx as nx
    >>> from diffusio import spread
    >>> result = spread.simulate(nx.karate_club_graph(), spread.SIR(beta=0.05, gamma=0.1), seeds=[0],
    ...                          trials=50, seed=0)
    >>> list(result.curves.columns)
    ['trial', 'step', 'S', 'I', 'R']
    >>> result.summary().columns[:4].tolist()
    ['step', 'S_mean', 'S_lower', 'S_upper']
    """
    _check_arguments(model, trials, max_steps, workers)
    graph = as_graph(graph)
    prepared = model.prepare(graph)
    rng_states = trial_states(seed, int(trials))
    seed_matrix = _seed_matrix(graph, model, seeds, rng_states)
    threads = int(workers or os.cpu_count() or 1)
    final = np.zeros((trials, graph.n_nodes if final_states else 0), dtype=np.int8)
    cut_short = np.zeros(trials, dtype=np.bool_)

    runner = None
    if client is not None:
        from diffusio.spread.cluster import ClusterRunner

        runner = ClusterRunner(client, graph, model, prepared, progress=progress)

    def run(rows: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        """Trials ``rows`` up to ``horizon`` steps: (counts, last step of each)."""
        if runner is not None:
            counts, steps, final[rows], cut_short[rows] = runner.run(seed_matrix[rows], rng_states[rows], horizon,
                                                                     bool(final_states), final.shape[1])
            return counts, steps
        # kernels write every step up to steps[trial]; nothing beyond is ever read.  Step-major in
        # memory: the trials' counts at one step sit together, so short trials touch a few pages
        # instead of one each (a page fault costs about as much as a small cascade)
        counts = np.empty((horizon + 1, rows.size, model.n_codes), dtype=np.int32).transpose(1, 0, 2)
        steps = np.zeros(rows.size, dtype=np.int64)
        part_final = np.zeros((rows.size, final.shape[1]), dtype=np.int8)
        part_cut = np.zeros(rows.size, dtype=np.bool_)

        def run_block(lo: int, hi: int) -> None:
            # zero trials (the compile call) still get counts of the real layout: a zero-size view
            # types as contiguous, and numba would compile a version that no real call uses
            model.run(graph, prepared, seed_matrix[rows[lo:hi]], rng_states[rows[lo:hi]], int(horizon),
                      counts[lo:hi] if hi > lo else counts[:1], steps[lo:hi], part_final[lo:hi], bool(final_states),
                      part_cut[lo:hi])

        # zero trials first, with Ctrl-C held: numba compiles on the first call, and an interrupted
        # compilation breaks numba or is lost (the run went on); here, not on a worker thread.  Once
        # per kind of call in a process: holding Ctrl-C and the empty call cost 3% of 1,000 small cascades
        key = _kernel_key(model, graph, prepared, final_states)
        if key not in _COMPILED:
            with interrupts_held():
                run_block(0, 0)
                _hold_final_counts(counts[:1], steps[:1], 0)  # steps are 0 yet: nothing is written
            _COMPILED.add(key)
        run_interruptibly(run_block, rows.size, threads, should_stop=should_stop)
        final[rows], cut_short[rows] = part_final, part_cut
        return counts, steps

    horizon = FIRST_HORIZON if max_steps is None else int(max_steps)
    every = np.arange(trials)
    counts, steps = run(every, horizon)
    horizons = np.full(trials, horizon, dtype=np.int64)
    if max_steps is None and model.always_ends:
        counts, steps, horizons = _run_on(run, model, graph, counts, steps, horizons)

    last = int(steps.max())
    _hold_final_counts(counts, steps, last)
    counts = counts[:, : last + 1]
    codes = list(model.state_codes)
    # a compact copy: the buffer was sized for the horizon.  In the buffer's own (step-major) order: a
    # trial-major copy reads it with a stride per element, as long as 1,000 small cascades
    counts = counts[:, :, codes] if codes != list(range(model.n_codes)) else counts.copy(order="K")
    result = SpreadResult(model=model, graph=graph, hit_max_steps=int(np.count_nonzero(steps >= horizons)),
                          cut_short=int(np.count_nonzero(cut_short)), _counts=counts,
                          _final=final if final_states else None, trial_steps=steps)
    for line in result.warnings():
        warnings.warn(line, TruncationWarning, stacklevel=2)
    return result



_COMPILED: set = set()  # the kinds of kernel call (see _kernel_key) already compiled in this process


def _kernel_key(model: Model, graph: Graph, prepared: Any, final_states: bool) -> tuple:
    """What numba compiles a model's kernel for: the model's class and its arguments' types."""
    def kind(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            return value.dtype.str, value.ndim, value.flags.c_contiguous
        if isinstance(value, tuple):
            return tuple(kind(item) for item in value)
        return type(value)
    return type(model), kind(graph.indptr), kind(graph.indices), bool(final_states), kind(prepared)


def _check_arguments(model: Model, trials: int, max_steps: int | None, workers: int | None) -> None:
    if not isinstance(model, Model):
        raise UsageError(f"model must be a spread model such as spread.SIR(beta=0.05, gamma=0.1), got {model!r}")
    if isinstance(trials, bool) or not isinstance(trials, Integral) or trials < 1:
        raise UsageError(f"trials must be a positive integer, got {trials!r}")
    if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, Integral) or max_steps < 1):
        raise UsageError(f"max_steps must be a positive integer or None (run to the end), got {max_steps!r}")
    if workers is not None and (not isinstance(workers, Integral) or workers < 1):
        raise UsageError(f"workers must be a positive integer or None, got {workers!r}")


FIRST_HORIZON = 500          # steps every trial gets first; most cascades and epidemics end long before
AUTO_MEMORY = 1 << 30         # bytes a rerun of long trials may take; beyond, they stay cut (and say so)
MAX_AUTO_STEPS = 1_000_000    # ... and steps: SIR with gamma = 1e-30 would take 1e30 steps to end


def _run_on(run, model: Model, graph, counts: np.ndarray, steps: np.ndarray, horizons: np.ndarray):
    """Rerun, with four times the horizon, the trials still running at theirs, until all have ended
    (or a progressive model's bound of n steps, the memory budget or MAX_AUTO_STEPS is reached); each rerun
    replays the trial's own random stream, so the result is what one long run would give."""
    pending = np.flatnonzero(steps >= horizons)
    bound = graph.n_nodes * model.step_bound if model.step_bound else None
    longer = {}
    while pending.size:
        horizon = int(horizons[pending[0]]) * 4
        if bound is not None:
            horizon = min(horizon, bound + 1)
        horizon = min(horizon, MAX_AUTO_STEPS)
        if horizon <= horizons[pending[0]] or pending.size * (horizon + 1) * model.n_codes * 4 > AUTO_MEMORY:
            break
        part, part_steps = run(pending, horizon)
        for j, t in enumerate(pending):
            longer[t] = part[j, : part_steps[j] + 1]
        steps[pending], horizons[pending] = part_steps, horizon
        pending = pending[part_steps >= horizon]
    if not longer:
        return counts, steps, horizons
    merged = np.empty((counts.shape[0], int(steps.max()) + 1, counts.shape[2]), dtype=counts.dtype)
    width = counts.shape[1]
    merged[:, :width] = counts
    for t, rows in longer.items():
        merged[t, : rows.shape[0]] = rows
    return merged, steps, horizons


class TruncationWarning(UserWarning):
    """Some trials did not run to their end: the result says how many and why."""


@lean_kernel
def _hold_final_counts(counts, steps, longest):
    """Trials that ended early keep their final counts up to step ``longest`` (in place).  Element
    by element, on the whole buffer: a slice per step, and a second compiled version for the
    non-contiguous view of the first ``longest`` steps, made this cost more than 1,000 small cascades."""
    for t in range(counts.shape[0]):
        end = steps[t]
        for step in range(end + 1, longest + 1):
            for k in range(counts.shape[2]):
                counts[t, step, k] = counts[t, end, k]
