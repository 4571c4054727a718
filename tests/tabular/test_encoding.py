"""The encoder: every dtype comes back as it went in, numbers stay in range, errors name the column."""

import numpy as np
import pandas as pd
import pytest

from diffusio.errors import UsageError
from diffusio.tabular.encoding import TableEncoder


def mixed_table(n=200, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "age": rng.integers(18, 90, n),
        "income": np.exp(rng.normal(10, 1, n)),
        "city": rng.choice(["Oslo", "Rome", "Lima"], n).astype(object),
        "member": rng.random(n) < 0.3,
        "grade": pd.Categorical(rng.choice(["low", "mid", "high"], n), categories=["low", "mid", "high"]),
        "visits": pd.array(rng.integers(0, 5, n), dtype="Int64"),
    })
    df.loc[rng.random(n) < 0.1, "income"] = np.nan
    df.loc[rng.random(n) < 0.05, "city"] = None
    return df


def test_round_trip_keeps_values_and_dtypes():
    df = mixed_table()
    enc = TableEncoder.fit(df)
    back = enc.decode(enc.encode(df))
    assert list(back.dtypes.astype(str)) == list(df.dtypes.astype(str))
    np.testing.assert_array_equal(back["age"], df["age"])
    np.testing.assert_allclose(back["income"], df["income"], rtol=1e-4)   # float32 coordinates; NaN in the same rows
    assert back["city"].isna().equals(df["city"].isna())
    assert (back["city"].dropna() == df["city"].dropna()).all()
    assert list(back["grade"].cat.categories) == ["low", "mid", "high"]
    assert back["member"].equals(df["member"])


def test_any_coordinates_decode_into_range_and_type():
    df = mixed_table()
    enc = TableEncoder.fit(df)
    wild = np.random.default_rng(1).normal(0, 5, size=(500, enc.width))
    out = enc.decode(wild)
    assert out["age"].between(df["age"].min(), df["age"].max()).all()
    assert out["age"].dtype == np.int64
    assert out["income"].dropna().between(df["income"].min(), df["income"].max()).all()
    assert set(out["city"].dropna()) <= {"Oslo", "Rome", "Lima"}


@pytest.mark.parametrize("df, message", [
    (pd.DataFrame({"a": [1.0]}), "1 row"),
    (pd.DataFrame({"a": []}), "0 rows"),
    (pd.DataFrame({"a": [1, 2], "b": [np.nan, np.nan]}), "'b' is missing in every row"),
    (pd.DataFrame({"a": [1.0, np.inf]}), "infinite"),
    (pd.DataFrame({"t": pd.to_datetime(["2020-01-01", "2021-01-01"])}), "dates"),
    (pd.DataFrame({"id": [f"user{i}" for i in range(1500)]}), "identifier"),
])
def test_bad_tables_are_refused_by_name(df, message):
    with pytest.raises(UsageError, match=message):
        TableEncoder.fit(df)


def test_unseen_category_is_named():
    enc = TableEncoder.fit(pd.DataFrame({"k": ["a", "b", "a"]}))
    with pytest.raises(UsageError, match="'c', which the model never saw"):
        enc.encode(pd.DataFrame({"k": ["c"]}))
