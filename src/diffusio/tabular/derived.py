"""Columns that are an exact rule of another column, found in the data and recomputed, not learned.

Real tables often carry the same fact twice: churn's ``total_day_charge`` is ``total_day_minutes``
times 0.17, rounded to the cent, and so on for evening, night and international calls.  A
diffusion model learns each column with a little noise, so its charges drift from its minutes --
a disagreement no real row has, which a detector spots and which teaches a model trained on the
synthetic rows a fuzzier rule.  Here such columns are found at fit time (``b = round(k a + c, d)``
on every row, with ``d`` the decimals ``b`` is written in) and recomputed from their source after
sampling, so every synthetic row obeys the rule exactly.  They are still learned: left out of the
diffusion, churn's call totals lost the double weight their two copies carry in the loss, and a
classifier trained on the synthetic rows lost a tenth of its F1 (docs/benchmarks-tabular.md).

>>> import pandas as pd
>>> df = pd.DataFrame({"minutes": [10.0, 12.5, 3.2, 7.7] * 5 + [1.1, 2.2, 3.3, 4.4, 5.5, 6.6, 8.8, 9.9, 11.1, 13.3]})
>>> df["charge"] = (df["minutes"] * 0.17).round(2)
>>> rules = find_derived(df)
>>> [(r.name, r.source, r.slope, r.decimals) for r in rules]
[('charge', 'minutes', 0.17, 2)]
>>> apply_derived(df[["minutes"]], rules)["charge"].equals(df["charge"])
True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

MIN_DISTINCT = 10        # a rule needs this many distinct source values: two-valued columns prove nothing
MAX_DECIMALS = 6         # a column written with more decimals than this is measured, not computed
EXACT_SHARE = 0.98       # rows the rule must reproduce to the last written digit; the rest may be one
                         # digit off (churn's night charge: 98.9%, computed from unrounded minutes)
UNIT_OF_SPREAD = 0.01    # the last digit must be under 1% of the column's spread, or rounding hides anything


@dataclass(frozen=True)
class DerivedColumn:
    """``name`` = round(``slope`` x ``source`` + ``intercept``, ``decimals``); missing where the source is.
    Every training row was within one last digit of the rule, and a share ``exact`` of them on it."""

    name: str
    source: str
    slope: float
    intercept: float
    decimals: int
    exact: float = 1.0      # share of the training rows the rule reproduced to the last digit
    integer: bool = False   # write the values back as whole numbers (the column's dtype was an integer one)

    def compute(self, source: pd.Series) -> pd.Series:
        values = np.round(self.slope * source.to_numpy(dtype=np.float64) + self.intercept, self.decimals)
        if self.integer and not np.isnan(values).any():
            return pd.Series(values.astype(np.int64), index=source.index, name=self.name)
        return pd.Series(values, index=source.index, name=self.name)

    def __str__(self) -> str:
        shift = f" {'-' if self.intercept < 0 else '+'} {abs(self.intercept):g}" if self.intercept else ""
        rule = f"{self.name} = round({self.slope:g} x {self.source}{shift}, {self.decimals})"
        return rule if self.exact == 1 else f"{rule} (exact on {self.exact:.1%} of the rows, one digit off on the rest)"

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def find_derived(df: pd.DataFrame) -> list[DerivedColumn]:
    """Every numeric column of ``df`` that an earlier numeric column determines exactly (see the
    module).  A source is never itself derived, so the rules apply in one pass."""
    columns = [_Facts.of(name, df[name]) for name in df.columns if is_number(df[name])]
    rules: list[DerivedColumn] = []
    derived: set[str] = set()
    for j, b in enumerate(columns):
        if b.unit is None:
            continue
        for a in columns[:j]:
            if a.name in derived or not a.varied or not np.array_equal(a.missing, b.missing):
                continue
            if abs(float(a.z @ b.z)) < 0.999 * len(a.z):   # correlation, from columns standardised once
                continue
            rule = _rule(a.values, b.values, b.decimals)
            if rule is not None:
                rules.append(DerivedColumn(b.name, a.name, *rule, integer=pd.api.types.is_integer_dtype(df[b.name])))
                derived.add(b.name)
                break
    return rules


def apply_derived(df: pd.DataFrame, rules: list[DerivedColumn]) -> pd.DataFrame:
    """``df`` with every derived column computed from its source (added at the end; reorder after)."""
    out = df.copy()
    for rule in rules:
        out[rule.name] = rule.compute(out[rule.source])
    return out


def is_number(series: pd.Series) -> bool:
    """Whether ``series`` holds numbers (booleans are categories)."""
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


@dataclass
class _Facts:
    """What the search needs of one column, computed once (a table of p columns has p^2 / 2 pairs)."""

    name: str
    values: np.ndarray     # the present values
    missing: np.ndarray    # where values are missing
    z: np.ndarray          # values standardised (zeros when constant)
    varied: bool           # enough distinct values to be a source
    decimals: int | None   # decimals the values are written with
    unit: float | None     # one last digit, when a rule could be seen through that rounding at all

    @classmethod
    def of(cls, name: str, series: pd.Series) -> "_Facts":
        missing = series.isna().to_numpy()
        values = series.to_numpy(np.float64)[~missing]
        finite = len(values) > 1 and bool(np.isfinite(values).all())
        spread = float(np.ptp(values)) if finite else 0.0
        z = (values - values.mean()) / values.std() if spread > 0 else np.zeros_like(values)
        decimals = _decimals(values) if spread > 0 else None
        unit = None if decimals is None or 10.0 ** -decimals > UNIT_OF_SPREAD * spread else 10.0 ** -decimals
        return cls(name, values, missing, z, spread > 0 and len(np.unique(values)) >= MIN_DISTINCT, decimals, unit)


def _rule(x: np.ndarray, y: np.ndarray, decimals: int) -> tuple[float, float, int, float] | None:
    """(slope, intercept, decimals, exact share) when ``y`` is ``x`` through a straight line rounded
    to ``decimals``, else None."""
    slope, intercept = np.polyfit(x, y, 1)
    unit = 10.0 ** -decimals
    best = None
    for digits in range(1, 13):   # the shortest slope and intercept that reproduce the most rows
        k, c = round(float(slope), digits), round(float(intercept), digits) + 0.0   # + 0.0: no -0.0
        error = np.abs(np.round(k * x + c, decimals) - y)
        exact = float((error < unit / 2).mean())
        if error.max() <= unit * 1.000001 and (best is None or exact > best[3]):
            best = (k, c, decimals, round(exact, 4))
    return best if best is not None and best[3] >= EXACT_SHARE else None


def _decimals(y: np.ndarray) -> int | None:
    """How many decimals the values are written with (None: more than MAX_DECIMALS)."""
    for d in range(MAX_DECIMALS + 1):
        if np.allclose(y, np.round(y, d), rtol=0, atol=1e-9 * max(1.0, np.abs(y).max())):
            return d
    return None
