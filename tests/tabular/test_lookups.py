"""Lookups: a number that categorical columns determine is found, written back exactly after
sampling (never a rare key's training value), saved with the model and refused when tampered."""

import json

import numpy as np
import pandas as pd
import pytest

from diffusio.cli.main import main
from diffusio.errors import UsageError
from diffusio.tabular import TableDiffusion
from diffusio.tabular.lookups import MIN_GROUP_ROWS, apply_lookups, find_lookups

ROUTES = {("EWR", "BOS"): 200, ("JFK", "BOS"): 187, ("LGA", "BOS"): 184, ("EWR", "ORD"): 719, ("JFK", "ORD"): 740,
          ("LGA", "ORD"): 733, ("EWR", "SFO"): 2565, ("JFK", "SFO"): 2586, ("LGA", "SFO"): 2580}


def flights(n=900, seed=0):
    """Distance is set by (origin, dest) -- neither alone -- and delay is noise."""
    rng = np.random.default_rng(seed)
    origin = rng.choice(["EWR", "JFK", "LGA"], n)
    dest = rng.choice(["BOS", "ORD", "SFO"], n)
    return pd.DataFrame({"origin": origin, "dest": dest, "delay": rng.normal(10, 5, n).round(1),
                         "distance": [ROUTES[k] for k in zip(origin, dest)]})


def test_a_number_set_by_two_columns_is_found_and_written_back():
    df = flights()
    rule, = find_lookups(df, ["origin", "dest"])
    assert (rule.name, rule.keys, rule.exact) == ("distance", ("origin", "dest"), 1.0)
    drawn = df.assign(distance=df["distance"] + np.random.default_rng(1).normal(0, 9, len(df)).round().astype(int))
    back = apply_lookups(drawn, [rule])
    assert back["distance"].dtype == df["distance"].dtype and back.equals(df)


def test_only_a_near_exact_rule_on_real_categories_is_a_lookup():
    df = flights()
    noisy = df.assign(distance=df["distance"].where(np.arange(len(df)) % 50 != 0, 1))   # 2 % off the rule
    assert find_lookups(noisy, ["origin", "dest"]) == []
    one_percent_off = df.assign(distance=df["distance"].where(np.arange(len(df)) % 200 != 0, 1))
    assert [r.exact for r in find_lookups(one_percent_off, ["origin", "dest"])] == [round(1 - 5 / 900, 6)]
    ids = df.assign(flight=[f"F{i // 2}" for i in range(len(df))])  # two rows a value: an identifier
    assert [r.keys for r in find_lookups(ids, ["flight"])] == []


def test_a_mostly_constant_column_is_not_a_lookup_and_keeps_its_rare_values():
    """Any key's most common value of a column that is 99 % zeros is zero: that is no rule."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"state": rng.choice(list("ABCD"), 2000), "flag": (rng.random(2000) < 0.005).astype(int),
                       "gain": np.where(rng.random(2000) < 0.992, 0.0, rng.uniform(1, 100, 2000).round(2))})
    assert find_lookups(df, ["state"]) == []


def test_an_id_column_is_not_a_key():
    """300 customers with 30 rows each: their ages must not be written back exactly."""
    rng = np.random.default_rng(0)
    customer = np.repeat(np.arange(300), 30)
    df = pd.DataFrame({"customer": [f"C{c}" for c in customer], "age": rng.integers(18, 90, 300)[customer],
                       "amount": rng.normal(50, 10, len(customer)).round(2)})
    assert find_lookups(df, ["customer"]) == []


def test_the_pairs_tried_are_the_smallest_not_the_first():
    """With many categorical columns the pairs with the fewest combinations are tried first,
    whatever the column order."""
    df = flights()
    rng = np.random.default_rng(0)
    wide = pd.concat([pd.DataFrame({f"b{i}": rng.choice(list("xyzw"), len(df)) for i in range(11)}), df], axis=1)
    categorical = [f"b{i}" for i in range(11)] + ["origin", "dest"]
    assert [r.keys for r in find_lookups(wide, categorical)] == [("origin", "dest")]


def test_a_rare_key_keeps_the_drawn_number_and_missing_stays_missing():
    df = flights()
    df.loc[:MIN_GROUP_ROWS - 2, ["origin", "dest", "distance"]] = ["XYZ", "BOS", 5]   # a route on 4 rows only
    rule, = find_lookups(df, ["origin", "dest"])
    assert ("XYZ", "BOS", 5.0) not in rule.values
    drawn = pd.DataFrame({"origin": ["XYZ", "JFK", "JFK", "nowhere"], "dest": ["BOS", "ORD", "ORD", "BOS"],
                          "distance": [7.0, 735.0, np.nan, 3.0]})
    assert apply_lookups(drawn, [rule])["distance"].tolist()[:2] == [7.0, 740.0]
    assert np.isnan(apply_lookups(drawn, [rule])["distance"][2]) and apply_lookups(drawn, [rule])["distance"][3] == 3.0


@pytest.fixture(scope="module")
def fitted():
    return TableDiffusion(steps=60, width=32, depth=1, seed=0).fit(flights(), target="origin")


def test_the_model_samples_every_route_at_its_distance(fitted, tmp_path):
    assert [(r.name, r.keys) for r in fitted.lookups] == [("distance", ("origin", "dest"))]
    rows = fitted.sample(300, seed=0)
    assert all(ROUTES[k] == d for k, d in zip(zip(rows.origin, rows.dest), rows.distance))
    assert TableDiffusion(steps=60, width=32, depth=1, seed=0, lookup=False).fit(flights(), target="origin").lookups == []
    fitted.save(tmp_path / "m")
    assert TableDiffusion.load(tmp_path / "m").sample(50, seed=3).equals(fitted.sample(50, seed=3))


def test_a_tampered_lookup_is_refused(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    row = config["lookups"][0]["values"][0]
    for bad in ({"keys": ["origin", "gate"]}, {"values": [["EWR", "BOS"]]}, {"values": [["EWR", "BOS", "far"]]},
                {"values": [row, row]}, {"values": [[["EWR"], "BOS", 200]]}, {"name": "dest"},
                {"keys": ["origin", "delay"]}):
        config["lookups"] = [{**config["lookups"][0], **bad}] if "lookups" in config else None
        (tmp_path / "m" / "config.json").write_text(json.dumps(config))
        with pytest.raises(UsageError, match="config.json is incomplete"):
            TableDiffusion.load(tmp_path / "m")
        fitted.save(tmp_path / "m")
        config = json.loads((tmp_path / "m" / "config.json").read_text())


def test_fit_names_the_columns_it_looks_up(tmp_path, capsys):
    flights().to_csv(tmp_path / "f.csv", index=False)
    assert main(["tabular", "fit", str(tmp_path / "f.csv"), "--out", str(tmp_path / "r"), "--steps", "2",
                 "--width", "16", "--depth", "1", "--quiet"]) == 0
    assert "looked up after sampling: distance = the value of its (origin, dest) in a table of 9" in capsys.readouterr().out
    assert main(["tabular", "fit", str(tmp_path / "f.csv"), "--out", str(tmp_path / "r2"), "--steps", "2",
                 "--width", "16", "--depth", "1", "--quiet", "--no-lookup"]) == 0
    assert "looked up" not in capsys.readouterr().out
