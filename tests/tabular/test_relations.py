"""Columns that a law of others nearly gives are learned as what the law leaves over."""

import numpy as np
import pandas as pd
import pytest

from diffusio.tabular import TableDiffusion
from diffusio.tabular.datasets import load_table
from diffusio.tabular.relations import TAIL, Relation, find_relations, from_leftovers, to_leftovers


@pytest.fixture(scope="module")
def diamonds():
    df, target = load_table("diamonds")
    return df, target


def _obeys(table: pd.DataFrame, rel: Relation) -> float:
    """Share of rows on which the law gives the column to its last digit."""
    return float(np.isclose(table[rel.name].to_numpy(float), rel.law(table)).mean())


def test_diamonds_depth_is_100_z_over_the_mean_of_x_and_y(diamonds):
    df, target = diamonds
    rels = {r.name: r for r in find_relations(df, skip={target})}
    z = rels["z"]  # z = depth x sqrt(x y) / 100: the same law as depth = 100 z / mean(x, y), read for z
    exponents = dict(zip(z.sources, z.exponents))
    assert set(exponents) == {"x", "y", "depth"} and z.decimals == 2 and z.spread == 0
    assert exponents["depth"] == pytest.approx(1, abs=0.01) and z.scale == pytest.approx(0.01, rel=0.01)
    assert exponents["x"] == pytest.approx(0.5, abs=0.01) and exponents["y"] == pytest.approx(0.5, abs=0.01)
    assert _obeys(df, z) > 0.95
    assert "price" not in rels and all("price" not in r.sources for r in rels.values())   # skipped: the target
    learned = to_leftovers(df, list(rels.values()))
    assert (learned["z"] == 0).mean() > 0.95          # the law leaves nothing on nearly every row
    assert _round_trips(df, learned, list(rels.values())) > 0.995


def _round_trips(df, learned, rels) -> float:
    """Rebuild ``df`` from its leftovers: every row comes back but those whose leftover lies in the
    clipped tails (data errors, such as a diamond 0 mm wide). Returns the share that comes back."""
    back = from_leftovers(learned, rels)
    tails = np.any([~learned[r.name].between(r.leftover_low, r.leftover_high) for r in rels], axis=0)
    assert back[~tails].equals(df[~tails]) and (back.dtypes == df.dtypes).all()
    return 1 - float(tails.mean())


@pytest.mark.parametrize("name", ["credit", "wine"])
def test_tables_without_laws_have_none(name):
    df, target = load_table(name)
    assert find_relations(df, skip={target}) == []


def test_laws_are_undone_in_order_and_keep_types_and_ranges():
    rng = np.random.default_rng(1)
    w, h = rng.uniform(2, 20, 800).round(1), rng.uniform(2, 20, 800).round(1)
    df = pd.DataFrame({"w": w, "h": h, "area": np.round(w * h).astype(np.int64), "noise": rng.normal(size=800),
                       "label": rng.choice(["a", "b"], 800)})
    df["ratio"] = (df["area"] / df["h"]).round(3)   # depends on a rebuilt column
    rels = find_relations(df)
    names = [r.name for r in rels]
    assert "noise" not in names and "label" not in names and len(rels) >= 1
    for i, rel in enumerate(rels):   # no predictor is rebuilt after the column built from it
        assert not set(rel.sources) & set(names[i:])
    learned = to_leftovers(df, rels)
    assert _round_trips(df, learned, rels) >= 1 - 2 * len(rels) * TAIL
    wild = learned.copy()
    for rel in rels:
        wild[rel.name] = learned[rel.name] + rng.normal(0, 1000, len(df))   # leftovers far out of range
    back = from_leftovers(wild, rels)
    for rel in rels:
        assert back[rel.name].between(rel.low, rel.high).all() and back[rel.name].dtype == df[rel.name].dtype
    again = [Relation.from_json(r.to_json()) for r in rels]
    assert again == rels


@pytest.mark.slow
def test_sampled_diamonds_keep_the_law_which_learned_columns_do_not(diamonds, tmp_path):
    df, target = diamonds
    df = df.sample(2000, random_state=0).reset_index(drop=True)
    model = TableDiffusion(steps=150, width=64, depth=2).fit(df, target=target)
    plain = TableDiffusion(steps=150, width=64, depth=2, relate=False).fit(df, target=target)
    law = next(r for r in model.relations if r.name == "z")
    assert plain.relations == []
    synth = TableDiffusion.load(model.save(tmp_path / "m")).sample(1000, seed=0)
    assert list(synth.columns) == list(df.columns) and (synth.dtypes == df.dtypes).all()
    assert synth.equals(model.sample(1000, seed=0))   # the saved relations are the fitted ones
    real, kept, lost = _obeys(df, law), _obeys(synth, law), _obeys(plain.sample(1000, seed=0), law)
    assert kept > 0.8 * real and lost < 0.3, (real, kept, lost)


def test_two_columns_that_give_each_other_make_one_law():
    minutes = np.arange(300) % 97 + 0.5
    df = pd.DataFrame({"minutes": minutes, "charge": (minutes * 0.25).round(2)})
    (rel,) = find_relations(df)   # one of the two is rebuilt from the other, never both
    assert {rel.name, *rel.sources} == {"minutes", "charge"}


def test_a_config_whose_laws_name_unknown_columns_is_refused(tmp_path):
    import json

    from diffusio.errors import UsageError

    rng = np.random.default_rng(2)
    x = rng.uniform(1, 9, 400).round(2)
    df = pd.DataFrame({"x": x, "y": (x * 3).round(1) + rng.choice([0, 0.1], 400)})
    model = TableDiffusion(steps=2, width=8, depth=1).fit(df)
    assert model.relations
    path = model.save(tmp_path / "m")
    config = json.loads((path / "config.json").read_text())
    config["relations"][0]["sources"] = ["nope"]
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(UsageError, match="incomplete"):
        TableDiffusion.load(path)
