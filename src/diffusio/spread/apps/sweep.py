"""Scenario sweeps: one simulation per point of a parameter grid, in one tidy table.

Every point runs with the same ``seed``, so points differ only by their parameters (common random
numbers: differences between settings are not drowned in Monte Carlo noise).  With ``client`` each
point's trials run on a Dask cluster (:mod:`diffusio.spread.cluster`) and the table is identical to
a local run's.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd
from scipy import stats
from tqdm.auto import tqdm

from diffusio.errors import UsageError
from diffusio.spread.graph import as_graph
from diffusio.spread.models.base import Model
from diffusio.spread.simulate import simulate


def sweep(graph: Any, model_factory: Callable[..., Model], grid: Mapping[str, Iterable], seeds=None, *,
          trials: int = 100, seed: int | None = 0, max_steps: int | None = None, confidence: float = 0.95,
          workers: int | None = None, client: Any = None, progress: bool = True) -> pd.DataFrame:
    """Simulate ``model_factory(**point)`` at every point of ``grid`` (all combinations).

    Returns one row per point: its parameters, then for every state the mean final count with a
    confidence interval (``<state>_mean``, ``_lower``, ``_upper``), the mean number of steps a trial
    took (``steps_mean``) and how many trials were cut short (``cut``).

    Examples
    --------
    >>> from diffusio import spread
    >>> table = spread.sweep("karate", spread.SIR, {"beta": [0.02, 0.2], "gamma": [0.1]}, seeds=[0],
    ...                      trials=50, seed=0, progress=False)
    >>> table[["beta", "gamma"]].values.tolist()
    [[0.02, 0.1], [0.2, 0.1]]
    >>> bool(table.R_mean.iloc[1] > table.R_mean.iloc[0])
    True
    """
    if not callable(model_factory):
        raise UsageError(f"model_factory must build a model from keyword arguments (e.g. spread.SIR), got {model_factory!r}")
    if not isinstance(grid, Mapping) or not grid:
        raise UsageError(f"grid must be a non-empty {{parameter: [values]}} mapping, got {grid!r}")
    names = list(grid)
    values = []
    for name in names:
        v = grid[name]
        v = [v] if isinstance(v, (str, bytes)) or not isinstance(v, Iterable) else list(v)
        if not v:
            raise UsageError(f"grid[{name!r}] has no values; give at least one")
        values.append(v)
    if not 0 < confidence < 1:
        raise UsageError(f"confidence must be in (0, 1), got {confidence}")
    graph = as_graph(graph)
    points = [dict(zip(names, point)) for point in itertools.product(*values)]
    models = [_build(model_factory, params) for params in points]
    if client is not None:
        from diffusio.spread.cluster import ship_graph

        shipped, cluster_workers = ship_graph(client, graph)
        if len(points) >= POINTS_PER_WORKER * cluster_workers:
            return _sweep_points_on_cluster(client, shipped, points, models, seeds, trials, seed, max_steps,
                                            confidence, progress)
    rows = []
    for params, model in zip(tqdm(points, desc="sweep", unit="point", disable=not progress), models):
        result = simulate(graph, model, seeds, trials=trials, seed=seed, max_steps=max_steps, workers=workers,
                          client=client)
        rows.append({**params, **_final_summary(result, confidence)})
    return pd.DataFrame(rows)


# with at least this many grid points per worker, a cluster runs whole points as tasks (one round trip
# for the sweep) instead of splitting each point's trials over the workers (a round trip per point)
POINTS_PER_WORKER = 2


def _build(model_factory, params: dict) -> Model:
    try:
        return model_factory(**params)
    except TypeError as err:
        raise UsageError(f"the model does not take these parameters {params} ({err}); name its own "
                         "parameters in the grid") from None


def _point_summary(graph, model, seeds, trials, seed, max_steps, confidence) -> dict:
    """One grid point on a worker: the local run (trial i on stream i, so the same numbers)."""
    return _final_summary(simulate(graph, model, seeds, trials=trials, seed=seed, max_steps=max_steps, workers=1),
                          confidence)


def _sweep_points_on_cluster(client, shipped, points, models, seeds, trials, seed, max_steps, confidence,
                             progress) -> pd.DataFrame:
    from diffusio.cluster import as_finished

    futures = [client.submit(_point_summary, shipped, model, seeds, trials, seed, max_steps, confidence,
                             pure=False, retries=2) for model in models]
    with tqdm(total=len(futures), desc="sweep on the cluster", unit="point", disable=not progress) as bar:
        for _ in as_finished(client, futures, "sweep on the cluster"):
            bar.update(1)
    return pd.DataFrame([{**params, **future.result()} for params, future in zip(points, futures)])


def _final_summary(result, confidence: float) -> dict:
    finals = result.final_counts.to_numpy(dtype=np.float64)
    n = len(finals)
    mean = finals.mean(axis=0)
    half = (stats.t.ppf(0.5 + confidence / 2, n - 1) * finals.std(axis=0, ddof=1) / np.sqrt(n)) if n > 1 \
        else np.full_like(mean, np.nan)
    out = {}
    for k, state in enumerate(result.states):
        out.update({f"{state}_mean": mean[k], f"{state}_lower": mean[k] - half[k], f"{state}_upper": mean[k] + half[k]})
    out["steps_mean"] = float(result.trial_steps.mean())
    out["cut"] = int(result.hit_max_steps + result.cut_short)
    return out
