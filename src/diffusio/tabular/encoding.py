"""A table's columns as numbers a diffusion model can learn, and back, with every type restored.

* numeric columns: quantile-normalised to a standard normal (TabDDPM, Kotelnikov et al. 2023), so
  a skewed or heavy-tailed column is as easy to learn as a bell curve; the inverse maps back into
  the observed range, and integer-valued columns are rounded back to integers;
* missing numeric values: one extra +-1 indicator coordinate, so they come back at their rate;
* categorical columns (strings, booleans, pandas categories): one +-1 coordinate per category
  (missing is a category of its own); decoding takes the largest.

Everything the encoder learned is plain JSON plus one float array per numeric column, so a saved
model never needs pickle.

>>> import pandas as pd
>>> df = pd.DataFrame({"age": [23, 35, 51, 35], "city": ["Oslo", "Rome", "Oslo", None]})
>>> enc = TableEncoder.fit(df)
>>> x = enc.encode(df)
>>> x.shape                      # age, then Oslo / Rome / missing
(4, 4)
>>> back = enc.decode(x)
>>> back.equals(df)
True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from diffusio.errors import UsageError

MAX_CATEGORIES = 1000   # more distinct values than this is an identifier or free text, not a category
QUANTILES = 1000        # resolution of the quantile map (TabDDPM uses sklearn's default of 1000)
_EDGE = 1e-6            # ranks are kept inside (0, 1) so the normal quantile stays finite


@dataclass
class Column:
    """What was learned about one column."""

    name: str
    kind: str                      # "numeric" or "categorical"
    dtype: str                     # the pandas dtype to restore
    missing_rate: float = 0.0
    integer: bool = False          # numeric: every observed value is a whole number
    low: float | None = None       # numeric: observed range
    high: float | None = None
    categories: list = field(default_factory=list)   # categorical: values in coordinate order (None: missing)

    @property
    def width(self) -> int:
        """How many coordinates the column takes."""
        if self.kind == "categorical":
            return len(self.categories)
        return 1 + (self.missing_rate > 0)


def plain_value(value):
    """A category as a JSON value (numpy scalars become Python ones)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def is_categorical(series: pd.Series) -> bool:
    """Whether the encoder takes ``series`` as categories (strings, booleans, pandas categories)."""
    return not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def describe_column(name: str, series: pd.Series) -> Column:
    """Read a column's kind, range and categories; a clear error for what cannot be learned."""
    if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
        raise UsageError(f"column {name!r} holds dates or durations; convert it to a number (e.g. days since a "
                         "reference date) before fitting")
    present = series.dropna()
    if present.empty:
        raise UsageError(f"column {name!r} is missing in every row; drop it before fitting")
    missing = float(series.isna().mean())
    if is_categorical(series):
        if isinstance(series.dtype, pd.CategoricalDtype):
            values = [c for c in series.cat.categories if (series == c).any()]
        else:
            try:
                values = sorted(present.unique().tolist())
            except TypeError:  # mixed types (numbers and strings) have no order: keep first appearance
                values = present.unique().tolist()
        if len(values) > MAX_CATEGORIES:
            raise UsageError(f"column {name!r} has {len(values):,} distinct values (more than {MAX_CATEGORIES}); "
                             "it looks like an identifier or free text -- drop it before fitting")
        categories = [plain_value(v) for v in values] + ([None] if missing else [])
        return Column(name, "categorical", str(series.dtype), missing, categories=categories)
    values = present.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        raise UsageError(f"column {name!r} holds infinite values; replace them (or mark them missing) before fitting")
    integer = bool(np.all(values == np.round(values)))
    return Column(name, "numeric", str(series.dtype), missing, integer, float(values.min()), float(values.max()))


def _ranks(values: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """Empirical CDF through the quantile table; ties (discrete columns) get the middle of their run,
    as sklearn's QuantileTransformer does, by averaging the forward and the backward interpolation."""
    grid = np.linspace(0, 1, len(quantiles))
    forward = np.interp(values, quantiles, grid)
    backward = -np.interp(-values, -quantiles[::-1], -grid[::-1])
    return np.clip(0.5 * (forward + backward), _EDGE, 1 - _EDGE)


@dataclass
class TableEncoder:
    """Column descriptions plus each numeric column's quantile table."""

    columns: list[Column]
    quantiles: dict[str, np.ndarray]

    @classmethod
    def fit(cls, df: pd.DataFrame) -> "TableEncoder":
        check_table(df)
        columns = [describe_column(str(name), df[name]) for name in df.columns]
        quantiles = {}
        for col in columns:
            if col.kind == "numeric":
                values = df[col.name].dropna().to_numpy(dtype=np.float64)
                quantiles[col.name] = np.quantile(values, np.linspace(0, 1, min(QUANTILES, len(values))))
        return cls(columns, quantiles)

    @property
    def width(self) -> int:
        return sum(c.width for c in self.columns)

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise UsageError(f"no column named {name!r}; the table has {', '.join(repr(c.name) for c in self.columns)}")

    def encode(self, df: pd.DataFrame) -> np.ndarray:
        """Rows of ``df`` as a float32 matrix of ``width`` coordinates, each about unit scale."""
        parts = []
        for col in self.columns:
            series = df[col.name]
            if col.kind == "numeric":
                values = series.to_numpy(dtype=np.float64, na_value=np.nan)
                missing = np.isnan(values)
                z = ndtri(_ranks(np.where(missing, col.low, values), self.quantiles[col.name]))
                parts.append(np.where(missing, 0.0, z)[:, None])
                if col.width == 2:
                    parts.append(np.where(missing, 1.0, -1.0)[:, None])
            else:
                parts.append(self._one_hot(col, series))
        return np.concatenate(parts, axis=1).astype(np.float32)

    @staticmethod
    def _one_hot(col: Column, series: pd.Series) -> np.ndarray:
        index = {c: i for i, c in enumerate(col.categories)}
        missing_code = index.get(None, -1)
        found, uniques = pd.factorize(series, use_na_sentinel=True)  # each distinct value looked up once
        lookup = np.array([index.get(plain_value(v), -1) for v in uniques] + [missing_code], dtype=np.int64)
        codes = lookup[found]  # -1 (missing) picks the last entry
        if (codes < 0).any():
            unseen = series[codes < 0].iloc[0]
            raise UsageError(f"column {col.name!r} has the value {unseen!r}, which the model never saw; "
                             f"known values: {', '.join(map(repr, col.categories[:10]))}")
        out = -np.ones((len(series), len(col.categories)), dtype=np.float64)
        out[np.arange(len(series)), codes] = 1.0
        return out

    def decode(self, x: np.ndarray) -> pd.DataFrame:
        """The inverse of :meth:`encode` for any coordinates (model samples included): numbers back in
        their observed range, integers rounded, categories by the largest coordinate, dtypes restored."""
        x = np.asarray(x, dtype=np.float64)
        out, i = {}, 0
        for col in self.columns:
            block = x[:, i:i + col.width]
            i += col.width
            out[col.name] = self._decode_numeric(col, block) if col.kind == "numeric" else \
                decode_categorical(col, block)
        return pd.DataFrame(out)

    def _decode_numeric(self, col: Column, block: np.ndarray) -> pd.Series:
        q = self.quantiles[col.name]
        values = np.interp(ndtr(block[:, 0]), np.linspace(0, 1, len(q)), q)
        if col.integer:
            values = np.round(values)
        values = np.clip(values, col.low, col.high)
        if col.width == 2:
            values = np.where(block[:, 1] > 0, np.nan, values)
        series = pd.Series(values)
        if col.integer and pd.api.types.is_integer_dtype(pd.Series(dtype=col.dtype)):
            # a plain int64 column cannot hold missing values: use pandas' nullable integer then
            return series.astype(col.dtype if not series.isna().any() else "Int64")
        return series.astype(col.dtype) if col.dtype.startswith(("float", "Float")) else series

    def to_json(self) -> dict:
        return {"columns": [asdict(c) for c in self.columns]}

    @classmethod
    def from_json(cls, meta: dict, quantiles: dict[str, np.ndarray]) -> "TableEncoder":
        columns = [Column(**c) for c in meta["columns"]]
        missing = [c.name for c in columns if c.kind == "numeric" and c.name not in quantiles]
        if missing:
            raise UsageError(f"the model's weights lack the quantile table of {missing[:3]}; the files do not match")
        return cls(columns, {c.name: np.asarray(quantiles[c.name], dtype=np.float64) for c in columns
                             if c.kind == "numeric"})


def decode_categorical(col: Column, block: np.ndarray) -> pd.Series:
    """The category with the largest coordinate, in the column's own dtype."""
    picked = [col.categories[k] for k in block.argmax(axis=1)]
    if col.dtype == "category":
        present = [c for c in col.categories if c is not None]
        return pd.Series(pd.Categorical(picked, categories=present))
    if col.dtype == "bool" and None not in col.categories:
        return pd.Series(picked, dtype=bool)
    series = pd.Series(picked, dtype=object)
    return series.astype(col.dtype) if col.dtype.startswith("string") else series


def check_table(df: pd.DataFrame) -> None:
    """The table-level checks, before anything is learned."""
    if not isinstance(df, pd.DataFrame):
        raise UsageError(f"expected a pandas DataFrame, got {type(df).__name__}")
    if len(df) < 2:
        raise UsageError(f"the table has {len(df)} row{'s' if len(df) != 1 else ''}; a model needs at least 2 "
                         "(and hundreds to learn anything useful)")
    if df.shape[1] == 0:
        raise UsageError("the table has no columns")
    names = [str(c) for c in df.columns]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise UsageError(f"column name {dup!r} appears twice; rename one before fitting")
