"""Columns that are nearly a product of powers of other columns: learned as what the law leaves over.

Measured columns often obey a physical law up to rounding and the odd data error. In ggplot2's
diamonds, ``depth`` is ``100 z / mean(x, y)`` written to one decimal (exact on 93% of the rows),
``carat`` is a density times ``x y z``, and ``y`` is ``x`` within a percent or two. A diffusion
model learns each column with a little noise, so its rows break such laws by far more than real
rows do: a single feature, depth minus the law, told synthetic diamonds from real ones with a ROC
AUC of 0.95 (docs/benchmarks-tabular.md).

Here, at fit time, each positive numeric column is fitted in log space as a product of powers of
the others (``b ~ scale x prod x_i ** a_i``, least squares refitted without the rows far off the
law); predictors are then dropped one by one while that costs little, down to at most three. A
column whose leftover keeps under :data:`NEAR` of its own spread (median absolute deviations) is
learned as that leftover, counted in its own last digit: ``b - round(law, d)``, exactly zero on
every row the law reproduces. After sampling the column is rebuilt as ``round(law, d) +
leftover`` from the sampled predictors, so the model only has to learn how often, and by how much,
a row misses the law. The laws form no cycle and are undone in order, so a predictor may itself
be rebuilt first (in diamonds: ``x`` and ``y`` from ``carat`` and ``depth``, then ``z`` from ``x``,
``y`` and ``depth``).

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> x = rng.uniform(3, 9, 2000).round(2); z = (x * rng.uniform(0.58, 0.64, 2000)).round(2)
>>> df = pd.DataFrame({"x": x, "z": z, "depth": (100 * z / x).round(1), "noise": rng.normal(5, 1, 2000)})
>>> laws = find_relations(df)          # the same law, read for z: z = x depth / 100
>>> [str(r) for r in laws]
['z = round(0.00998877 * x^1 * depth^1.0003, 2) + leftover (spread 0.000 of the column)']
>>> learned = to_leftovers(df, laws)
>>> float((learned["z"] == 0).mean())    # the law gives every row's z to the last digit
1.0
>>> from_leftovers(learned, laws).equals(df)
True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from diffusio.tabular.derived import MIN_DISTINCT, _decimals, is_number

NEAR = 0.05            # leftover spread / column spread at or under which a column is learned as its leftover
MAX_SOURCES = 3        # predictors of one law
START = 8              # predictors the backward elimination starts from (those that weigh most in the full law)
GAIN = 0.75            # a further predictor must cut the leftover's spread to this share of what it was
POSITIVE_SHARE = 0.99  # the law is fitted on rows where every column in it is positive: most rows must be
FIT_ROWS = 5000        # rows the search fits and scores each candidate law on (a fixed random subset)
TRIMS = 3              # refits without the rows far off the law (robust to data errors)
TAIL = 0.001           # sampled leftovers stay within the training leftovers' TAIL and 1 - TAIL quantiles


@dataclass(frozen=True)
class Relation:
    """``name`` = round(``scale`` x prod(max(source, floor) ** exponent), ``decimals``) + leftover.

    ``floors``: each source's smallest positive value among the rows the search fitted on (at most
    FIT_ROWS), which stands in for a zero or negative value (a data error on a handful of rows: its
    leftover then carries the real value).
    ``spread``: the leftover's median absolute deviation over the column's, on the training rows.
    ``leftover_low``, ``leftover_high``: the training leftovers' :data:`TAIL` and 1 - TAIL quantiles,
    which sampled leftovers are kept within (see :func:`from_leftovers`)."""

    name: str
    sources: tuple
    exponents: tuple
    scale: float
    floors: tuple
    decimals: int | None
    low: float
    high: float
    integer: bool
    spread: float
    leftover_low: float = -np.inf
    leftover_high: float = np.inf

    def law(self, table: pd.DataFrame) -> np.ndarray:
        """The law's value on every row, rounded to the column's last digit."""
        log = np.full(len(table), np.log(self.scale))
        for source, exponent, floor in zip(self.sources, self.exponents, self.floors):
            log += exponent * np.log(np.maximum(table[source].to_numpy(np.float64), floor))
        value = np.exp(log)
        return value if self.decimals is None else np.round(value, self.decimals)

    def __str__(self) -> str:
        terms = " * ".join(f"{s}^{a:g}" for s, a in zip(self.sources, self.exponents))
        rounding = "" if self.decimals is None else f", {self.decimals}"
        return f"{self.name} = round({self.scale:.6g} * {terms}{rounding}) + leftover (spread {self.spread:.3f} of the column)"

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "Relation":
        return cls(**{**data, **{k: tuple(data[k]) for k in ("sources", "exponents", "floors")}})


def find_relations(df: pd.DataFrame, skip: set | frozenset = frozenset()) -> list[Relation]:
    """The columns of ``df`` (none in ``skip``) that a law of the others gives to within :data:`NEAR`
    of their spread, in an order that undoes them (see the module)."""
    candidates = {name: df[name] for name in df.columns if name not in skip and _usable(df[name])}
    if len(candidates) < 2:
        return []
    n = len(df)
    rows = np.sort(np.random.default_rng(0).choice(n, FIT_ROWS, replace=False)) if n > FIT_ROWS else np.arange(n)
    values = {name: s.to_numpy(np.float64)[rows] for name, s in candidates.items()}
    floors = {name: float(v[v > 0].min()) for name, v in values.items()}
    logs = {name: np.log(np.maximum(v, floors[name])) for name, v in values.items()}
    decimals = {name: _decimals(s.to_numpy(np.float64)) for name, s in candidates.items()}
    found = []
    for name in candidates:
        law = _law(name, values, logs, decimals[name])
        if law is not None:
            found.append(law)
    accepted: list[Relation] = []
    for sources, exponents, scale, (spread, _), name in sorted(found, key=lambda f: f[3]):
        if _depends(name, sources, accepted):  # its best law would close a cycle: the best law without those
            allowed = [c for c in logs if not _depends(name, [c], accepted)]
            law = _law(name, {c: values[c] for c in allowed + [name]}, {c: logs[c] for c in allowed + [name]},
                       decimals[name])
            if law is None:
                continue
            sources, exponents, scale, (spread, _), name = law
        column = candidates[name]
        rel = Relation(name, tuple(sources), tuple(exponents), scale, tuple(floors[s] for s in sources),
                       decimals[name], float(column.min()), float(column.max()),
                       bool(pd.api.types.is_integer_dtype(column)), round(spread, 4))
        low, high = np.quantile(to_leftovers(df, [rel])[name], [TAIL, 1 - TAIL])
        accepted.append(dataclasses.replace(rel, leftover_low=float(low), leftover_high=float(high)))
    return _in_order(accepted)


def to_leftovers(df: pd.DataFrame, relations: list[Relation]) -> pd.DataFrame:
    """``df`` with each related column replaced by its leftover (what the model learns)."""
    out = df.copy()
    for rel in relations:
        out[rel.name] = df[rel.name].to_numpy(np.float64) - rel.law(df)
        if rel.decimals is not None:
            out[rel.name] = out[rel.name].round(rel.decimals)  # whole last digits: exactly 0 where the law holds
    return out


def from_leftovers(df: pd.DataFrame, relations: list[Relation]) -> pd.DataFrame:
    """Undo :func:`to_leftovers` on sampled rows: each column rebuilt from its rebuilt predictors,
    kept to its training range and written as it was (decimals, whole numbers).

    Leftovers are first kept within the training leftovers' TAIL and 1 - TAIL quantiles. Beyond them
    lie a handful of data errors (diamonds with a zero width), which the model's tails would spread
    over a thousand rows; kept, they cost diamonds' correlations 0.04 of SDMetrics' pair score."""
    out = df.copy()
    for rel in relations:  # in order: a predictor is rebuilt before the columns built from it
        leftover = np.clip(out[rel.name].to_numpy(np.float64), rel.leftover_low, rel.leftover_high)
        if rel.decimals is not None:
            leftover = np.round(leftover, rel.decimals)
        value = np.clip(rel.law(out) + leftover, rel.low, rel.high)
        if rel.decimals is not None:
            value = np.round(value, rel.decimals)
        out[rel.name] = value.astype(np.int64) if rel.integer else value
    return out


def _usable(series: pd.Series) -> bool:
    """Numeric, complete, varied, and positive on nearly every row (the law lives in log space)."""
    if not is_number(series) or series.isna().any():
        return False
    values = series.to_numpy(np.float64)
    return (bool(np.isfinite(values).all()) and (values > 0).mean() >= POSITIVE_SHARE
            and len(np.unique(values)) >= MIN_DISTINCT)


def _mad(v: np.ndarray) -> float:
    return float(np.median(np.abs(v - np.median(v))))


def _law(name: str, values: dict, logs: dict, decimals: int | None):
    """(sources, exponents, scale, (spread, mean leftover), name) of the law of ``name``, or None
    when even all the other columns leave more than NEAR of its spread (as it would be learned: in
    whole last digits).  Backward elimination from all the others: a law may need two predictors
    together (depth is z / x: neither alone says anything), which adding one at a time never finds.
    The smallest set on the way that no larger one beats by more than GAIN is kept."""
    if _mad(values[name]) <= 0:
        return None
    fit_rows = values[name] > 0
    sources = [other for other in logs if other != name]
    if not sources:
        return None
    full = _fit(name, sources, values, logs, fit_rows, decimals)
    if full is None or full[3][0] > NEAR:
        return None
    # eliminate from the START predictors that weigh most in the full law (exponent x spread of the log)
    weight = {s: abs(a) * float(np.std(logs[s])) for s, a in zip(full[0], full[1])}
    path = [_fit(name, sorted(sources, key=lambda s: -weight[s])[:START], values, logs, fit_rows, decimals)]
    if path[0] is None:
        return None
    while len(path[-1][0]) > 1:
        fits = [_fit(name, [s for s in path[-1][0] if s != drop], values, logs, fit_rows, decimals)
                for drop in path[-1][0]]
        fits = [f for f in fits if f is not None]
        if not fits:
            break
        path.append(min(fits, key=lambda f: f[3]))
    chosen = None
    for law in path:  # from the most predictors to the fewest: one fewer, unless that costs more than GAIN
        if len(law[0]) <= MAX_SOURCES and law[3][0] <= NEAR and (chosen is None or GAIN * law[3][0] <= chosen[3][0]):
            chosen = law
    return None if chosen is None else tuple(chosen) + (name,)


def _fit(name: str, sources: list, values: dict, logs: dict, fit_rows: np.ndarray, decimals: int | None):
    """Least squares of log ``name`` on the logs of ``sources``: (sources, exponents, scale, spread)."""
    rows = fit_rows & np.all([values[s] > 0 for s in sources], axis=0)
    if rows.sum() < MIN_DISTINCT:
        return None
    design = np.column_stack([logs[s][rows] for s in sources] + [np.ones(rows.sum())])
    goal, keep = logs[name][rows], np.ones(rows.sum(), bool)
    for _ in range(TRIMS + 1):  # refit without the rows far off the law: a few data errors (z = 31.8 mm
        # where x is 5) would otherwise set the exponents (diamonds' depth came out as z^0.3 / x^0.3)
        coef, *_ = np.linalg.lstsq(design[keep], goal[keep], rcond=None)
        miss = np.abs(goal - design @ coef)
        keep = miss <= max(3 * 1.4826 * float(np.median(miss)), 1e-12)
        if keep.sum() < MIN_DISTINCT:
            return None
    exponents = [round(float(a), 4) + 0.0 for a in coef[:-1]]
    scale = float(np.exp(coef[-1]))
    law = scale * np.exp(np.column_stack([logs[s] for s in sources]) @ np.array(exponents))
    if decimals is not None:
        law = np.round(law, decimals)
    leftover, own = values[name] - law, _mad(values[name])
    # spread first; on a tie (most often two laws that both leave 0 on most rows) the smaller mean leftover
    return sources, exponents, scale, (_mad(leftover) / own, float(np.abs(leftover).mean()) / own)


def _depends(name: str, sources, accepted: list[Relation]) -> bool:
    """Would ``name`` from ``sources`` close a cycle?  (Each column has one candidate law, so none is
    rebuilt twice.)"""
    built = {rel.name: rel.sources for rel in accepted}
    stack, seen = list(sources), set()
    while stack:
        column = stack.pop()
        if column == name:
            return True
        if column not in seen:
            seen.add(column)
            stack.extend(built.get(column, ()))
    return False


def _in_order(relations: list[Relation]) -> list[Relation]:
    """Relations ordered so that every predictor is rebuilt before it is used."""
    pending, ordered, done = list(relations), [], set()
    names = {rel.name for rel in relations}
    while pending:
        ready = [rel for rel in pending if all(s not in names or s in done for s in rel.sources)]
        for rel in ready:
            ordered.append(rel)
            done.add(rel.name)
        pending = [rel for rel in pending if rel.name not in done]
    return ordered
