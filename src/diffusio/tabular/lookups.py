"""Numeric columns that categorical columns determine, found in the data and looked up after sampling.

Real tables carry facts that are set by a category: a flight's ``distance`` is the distance of its
route, ``(origin, dest)``; a product's list price, a state's tax rate.  A diffusion model draws such
a column with a little noise, like any number, so its distances fall between the routes' -- and
a classifier that reads the airport of origin off the route's exact distance (as one trained on
real flights does: macro-F1 1.00) is lost on the synthetic rows.  On 10,000 rows of a 6,000-step
flights model, writing each row's route distance in place of the drawn one raised the ML efficacy
of predicting ``origin`` from 0.668 to 0.994 (docs/benchmarks-tabular.md, "Lookups").

Such columns are found at fit time and looked up after sampling: one or two categorical columns
(the target included; each with at most sqrt(rows) values and, together, at least
:data:`ROWS_PER_KEY` rows per value on average) whose most common number per key covers
:data:`EXACT_SHARE` of the rows that are off the column's most common number (so a column that is
mostly zero is never "determined" by a key).  They are still learned, so that the columns that
move with them keep doing so.  The table holds only numbers that at least :data:`MIN_GROUP_ROWS`
training rows share under their key: a rarer key, an unseen one and a drawn missing value keep
what the model drew, so a rare combination never writes a training row's own value back.  A key
column that names a person with many rows each (a customer id) would write that person's numbers
back: the sqrt(rows) bound keeps most such columns out, and ``tabular fit`` prints every lookup;
drop identifiers before fitting, or fit with ``lookup=False``.

>>> import pandas as pd
>>> df = pd.DataFrame({"route": ["A", "B", "C", "A", "B", "C"] * 20, "delay": range(120)})
>>> df["km"] = df["route"].map({"A": 120.5, "B": 310.0, "C": 95.2})
>>> [(rule.name, rule.keys) for rule in find_lookups(df, ["route"])]
[('km', ('route',))]
>>> drawn = pd.DataFrame({"route": ["B", "A"], "km": [298.3, 131.0]})
>>> apply_lookups(drawn, find_lookups(df, ["route"]))["km"].tolist()
[310.0, 120.5]
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd

from diffusio.tabular.derived import is_number
from diffusio.tabular.encoding import plain_value

EXACT_SHARE = 0.99      # of the rows off the column's most common value, those the key explains (flights: 99.97 %)
MIN_GROUP_ROWS = 5      # rows a key's value must be on to enter the table: rarer keys keep the drawn value
ROWS_PER_KEY = 20       # a key with fewer rows per value on average is an identifier, not a category
MAX_PAIRS = 45          # two-column keys tried at most: those with the fewest combinations first
SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class LookupColumn:
    """``name`` is ``values[key]`` for the ``keys`` columns' values; ``exact``: the share of the
    training rows (where ``name`` is present) that the table reproduces."""

    name: str
    keys: tuple[str, ...]
    values: tuple[tuple, ...]   # (key value, ..., number) per key in the table
    exact: float
    _index: pd.Series | None = field(default=None, compare=False, repr=False)

    def lookup(self, df: pd.DataFrame) -> np.ndarray:
        """The table's number for each row of ``df`` (NaN where its key is not in the table)."""
        index = self._index
        if index is None:
            keys = pd.MultiIndex.from_tuples([v[:-1] for v in self.values], names=list(self.keys))
            index = pd.Series([float(v[-1]) for v in self.values], index=keys)
            object.__setattr__(self, "_index", index)
        rows = pd.MultiIndex.from_arrays([df[k].astype(object).map(plain_value) for k in self.keys])
        return index.reindex(rows).to_numpy(dtype=np.float64)

    def __str__(self) -> str:
        return f"{self.name} = the value of its ({', '.join(self.keys)}) in a table of {len(self.values):,} " \
               f"(exact on {self.exact:.2%} of the rows)"

    def to_json(self) -> dict:
        return {"name": self.name, "keys": list(self.keys), "values": [list(v) for v in self.values],
                "exact": self.exact}

    @classmethod
    def from_json(cls, data: dict) -> "LookupColumn":
        """A saved lookup, checked so that a tampered config.json fails on load, not while sampling."""
        keys = tuple(str(k) for k in data["keys"])
        values = tuple(tuple(v) for v in data["values"])
        if (not keys or len(set(keys)) != len(keys)
                or any(len(v) != len(keys) + 1 or not all(isinstance(k, SCALARS) for k in v[:-1])
                       or isinstance(v[-1], bool) or not isinstance(v[-1], (int, float)) or not np.isfinite(v[-1])
                       for v in values)
                or len({v[:-1] for v in values}) != len(values)):
            raise KeyError(f"lookup {data.get('name')!r} has rows that do not fit its keys")
        return cls(str(data["name"]), keys, values, float(data["exact"]))


def find_lookups(df: pd.DataFrame, categorical: list[str], skip: set | frozenset = frozenset()) -> list[LookupColumn]:
    """Every numeric column of ``df`` (none in ``skip``) that one, or else two, of the
    ``categorical`` columns determine (see the module).  A key column has at most sqrt(rows)
    values, so that a column of ids is not taken for a category."""
    numeric = [c for c in df.columns if c not in skip and c not in categorical and is_number(df[c])]
    present = {c: df[c].notna().to_numpy() for c in numeric}
    numeric = [c for c in numeric if df.loc[present[c], c].nunique() >= 2]
    counts = {c: df.loc[present[c], c].value_counts() for c in numeric}
    facts = {c: (len(counts[c]), float(counts[c].iloc[0] / present[c].sum())) for c in numeric}  # distinct, mode share
    sizes = {c: df[c].nunique(dropna=False) for c in categorical} if numeric else {}
    usable = sorted((c for c, k in sizes.items() if 2 <= k <= math.sqrt(len(df))), key=lambda c: (sizes[c], c))
    pairs = heapq.nsmallest(MAX_PAIRS, combinations(usable, 2), key=lambda p: sizes[p[0]] * sizes[p[1]])
    pairs = [tuple(sorted(pair, key=categorical.index)) for pair in pairs]  # a key's columns in the table's order
    rules, found = [], set()
    for keys in [(c,) for c in usable] + pairs:  # codes one key at a time: memory stays one column's
        if len(found) == len(numeric):
            break
        codes = _key_codes(df, keys)
        if codes.max() + 1 > len(df) / ROWS_PER_KEY:
            continue
        for name in numeric:
            rule = None if name in found else _rule(df, name, keys, codes, present[name], *facts[name])
            if rule is not None:
                rules.append(rule)
                found.add(name)
    return sorted(rules, key=lambda rule: list(df.columns).index(rule.name))


def apply_lookups(df: pd.DataFrame, rules: list[LookupColumn]) -> pd.DataFrame:
    """``df`` with each lookup column's number written where its row's key is in the table and the
    column is present (a missing value stays missing: the model draws missingness)."""
    out = df.copy()
    for rule in rules:
        found = rule.lookup(out)
        column = out[rule.name]
        write = ~np.isnan(found) & column.notna().to_numpy()
        if write.any():
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
            values[write] = found[write]
            out[rule.name] = pd.Series(values, index=out.index).astype(column.dtype)
    return out


def _rule(df: pd.DataFrame, name: str, keys: tuple[str, ...], codes: np.ndarray, present: np.ndarray,
          distinct: int, base: float) -> LookupColumn | None:
    """The lookup of ``name`` by ``keys`` (``codes``: each row's key; ``present``: the rows where
    ``name`` is; ``distinct``, ``base``: its count of distinct numbers, its most common one's share
    of the rows), or None unless the keys' most common values also explain :data:`EXACT_SHARE` of
    the rows off the column's most common value (a mostly-zero column is not "determined" by any key)."""
    values, codes = df[name].to_numpy(dtype=np.float64, na_value=np.nan)[present], codes[present]
    if distinct > codes.max() + 1 + (1 - EXACT_SHARE) * len(values):
        return None  # more distinct numbers than the keys can explain: no need to count
    counts = pd.DataFrame({"key": codes, "value": values}).value_counts()  # most common first
    top = counts[~counts.index.get_level_values("key").duplicated()]      # so: each key's most common value
    exact = float(top.sum() / len(values))
    if (exact - base) < EXACT_SHARE * (1 - base) or top.index.get_level_values("value").nunique() < 2:
        return None
    rows = df.loc[present, list(keys)].set_axis(codes)
    rows = rows[~rows.index.duplicated() & rows.notna().all(axis=1).to_numpy()]  # one row per key, none missing
    table = []
    for (key, value), count in top.items():
        if count >= MIN_GROUP_ROWS and key in rows.index:
            table.append((*map(plain_value, rows.loc[key]), float(value)))
    return LookupColumn(name, keys, tuple(table), round(exact, 6))


def _key_codes(df: pd.DataFrame, keys: tuple[str, ...]) -> np.ndarray:
    """One code per row for its combination of ``keys`` values (missing values: a value of their own)."""
    return df.groupby(list(keys), dropna=False, sort=False, observed=True).ngroup().to_numpy(dtype=np.int32)
