"""Columns that are an exact rule of another are found, left out of the diffusion and recomputed."""

import numpy as np
import pandas as pd
import pytest

from diffusio.tabular import TableDiffusion
from diffusio.tabular.datasets import load_table
from diffusio.tabular.derived import DerivedColumn, apply_derived, find_derived


def test_churns_four_charges_are_its_minutes_times_the_tariff():
    df, target = load_table("churn")
    rules = {r.name: r for r in find_derived(df)}
    assert set(rules) == {f"total_{p}_charge" for p in ("day", "eve", "night", "intl")}
    for part, tariff in (("day", 0.17), ("eve", 0.085), ("night", 0.045), ("intl", 0.27)):
        rule = rules[f"total_{part}_charge"]
        assert rule.source == f"total_{part}_minutes" and rule.slope == tariff and rule.decimals == 2
        again = rule.compute(df[rule.source])
        assert (again - df[rule.name]).abs().max() <= 0.01 + 1e-9
        assert (again == df[rule.name]).mean() == pytest.approx(rule.exact, abs=1e-4) and rule.exact >= 0.98


@pytest.mark.parametrize("name", ["credit", "diamonds", "breast-cancer", "wine"])
def test_tables_without_such_rules_have_none(name):
    df, _ = load_table(name)
    assert find_derived(df) == []   # diamonds' x, y, z and carat are close, not a rule


def test_near_rules_integer_columns_and_missing_values():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 100, 500).round(1)
    df = pd.DataFrame({"a": a, "noisy": (a * 2 + rng.normal(0, 0.05, 500)).round(2),
                       "cents": (a * 100).round().astype(np.int64), "coarse": (a > 50).astype(np.int64)})
    df.loc[[3, 7], ["a"]] = np.nan
    df["twice"] = df["a"] * 2
    rules = {r.name: r for r in find_derived(df)}
    assert "noisy" not in rules      # correlated 0.9999..., but a hundredth off on most rows
    assert "coarse" not in rules     # two values: rounding hides anything
    assert "cents" not in rules      # its missing values differ from a's
    assert rules["twice"].slope == 2 and rules["twice"].decimals == 1
    back = apply_derived(df.drop(columns=["twice"]), [rules["twice"]])
    assert back["twice"].isna().sum() == 2 and np.allclose(back["twice"].dropna(), df["twice"].dropna())
    whole = DerivedColumn("n", "m", 3.0, 0.0, 0, integer=True).compute(pd.Series([1.0, 2.0]))
    assert whole.dtype == np.int64 and whole.tolist() == [3, 6]


def _obeyed(synth, rule) -> float:
    return float(np.isclose(synth[rule.name], (synth[rule.source] * rule.slope + rule.intercept).round(2)).mean())


def test_sampled_rows_obey_the_rules_which_learned_columns_do_not(tmp_path):
    df, target = load_table("churn")
    df = df.sample(600, random_state=0).reset_index(drop=True)
    model = TableDiffusion(steps=40, width=32, depth=1).fit(df, target=target)
    plain = TableDiffusion(steps=40, width=32, depth=1, derive=False, relate=False).fit(df, target=target)
    assert len(model.derived) == 4 and plain.derived == []
    synth = TableDiffusion.load(model.save(tmp_path / "m")).sample(300, seed=0)
    assert list(synth.columns) == list(df.columns) and (synth.dtypes == df.dtypes).all()
    assert all(_obeyed(synth, rule) == 1 for rule in model.derived)
    assert all(_obeyed(plain.sample(300, seed=0), rule) < 0.5 for rule in model.derived)
    with pytest.raises(Exception, match="numeric"):
        model.sample(3, condition={"total_day_charge": 1.0})
