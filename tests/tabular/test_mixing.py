"""Column mixing (TabCutMixPlus): groups of correlated columns, rows mixed only within a class, and
less memorisation on a small real table."""

import numpy as np
import pandas as pd
import pytest
import torch

from diffusio.errors import UsageError
from diffusio.tabular import TableDiffusion
from diffusio.tabular.datasets import load_table
from diffusio.tabular.metrics import distance_to_closest_record
from diffusio.tabular.mixing import ColumnMixer, column_groups


def test_correlated_columns_share_a_group_and_a_one_hot_block_stays_whole():
    rng = np.random.default_rng(0)
    a = rng.normal(size=500)
    cat = np.eye(3)[rng.integers(0, 3, 500)] * 2 - 1          # a categorical column: three coordinates
    x = np.column_stack([a, a + 0.1 * rng.normal(size=500), rng.normal(size=500), cat]).astype(np.float32)
    groups = column_groups(x, [(0, 1), (1, 1), (2, 1), (3, 3)], threshold=0.5)
    as_sets = sorted(map(lambda g: tuple(sorted(g.tolist())), groups))
    assert as_sets == [(0, 1), (2,), (3, 4, 5)]
    assert len(column_groups(x, [(0, 1), (1, 1), (2, 1), (3, 3)], threshold=0.0)) == 1  # everything together


def test_mixed_rows_take_whole_groups_from_a_row_of_the_same_class():
    gen = torch.Generator().manual_seed(0)
    x = torch.arange(40, dtype=torch.float32).reshape(10, 4)        # every value tells its row
    classes = torch.tensor([0, 0, 0, 1, 1, 1, 1, 2, 2, 2])
    groups = [np.array([0, 1]), np.array([2]), np.array([3])]
    rows = torch.randint(0, 10, (2000,), generator=gen)
    out = ColumnMixer(x, groups, classes, rate=1.0)(rows, gen)
    source = (out // 4).long()                                      # the row each value came from
    assert (classes[source] == classes[rows][:, None]).all()         # never across classes
    assert (source[:, 0] == source[:, 1]).all()                      # a group moves as one
    assert (source != rows[:, None]).any(1).float().mean() > 0.4     # and rows really are mixed
    same = ColumnMixer(x, groups, classes, rate=0.0)(rows, torch.Generator().manual_seed(1))
    assert torch.equal(same, x[rows])


def test_mixing_keeps_the_dependency_within_a_class():
    rng = np.random.default_rng(0)
    k = rng.choice(["a", "b"], 400).astype(object)
    df = pd.DataFrame({"k": k, "x": np.where(k == "a", -3.0, 3.0) + rng.normal(0, 0.3, 400),
                       "y": rng.normal(size=400)})
    rows = TableDiffusion(steps=300, width=64, depth=2, batch_size=256, seed=0, mix=1.0).fit(df, target="k") \
        .sample(500, seed=0)
    assert ((rows.k == "a") == (rows.x < 0)).mean() > 0.9


@pytest.mark.parametrize("kwargs", [{"mix": 1.5}, {"mix": -0.1}, {"mix_threshold": 2}, {"mix": True}])
def test_bad_mix_settings_are_named(kwargs):
    with pytest.raises(UsageError, match=next(iter(kwargs))):
        TableDiffusion(**kwargs)


@pytest.mark.slow
def test_mixing_moves_samples_away_from_the_training_rows_of_a_small_real_table():
    # wine: 178 rows, 13 numeric columns; 120 to train, trained long enough to learn them by heart
    df, target = load_table("wine")
    df = df.sample(frac=1.0, random_state=0)
    train, holdout = df.iloc[:120], df.iloc[120:]
    settings = dict(steps=1000, width=128, depth=2, batch_size=120, seed=0)
    plain = TableDiffusion(**settings, mix=0.0).fit(train, target=target).sample(120, seed=0)
    mixed = TableDiffusion(**settings, mix=1.0).fit(train, target=target).sample(120, seed=0)
    d_plain = distance_to_closest_record(train, holdout, plain)["synthetic_median"]
    d_mixed = distance_to_closest_record(train, holdout, mixed)["synthetic_median"]
    assert d_mixed > 1.3 * d_plain


def test_cli_fit_takes_mix_and_records_it(tmp_path):
    import json

    from diffusio.cli.main import main

    assert main(["tabular", "fit", "wine", "--out", str(tmp_path / "m"), "--steps", "3", "--mix", "0.7", "--quiet"]) == 0
    assert json.loads((tmp_path / "m" / "config.json").read_text())["settings"]["mix"] == 0.7
    with pytest.raises(SystemExit) as bad:
        main(["tabular", "fit", "wine", "--out", str(tmp_path / "bad"), "--steps", "3", "--mix", "1.5"])
    assert bad.value.code == 2
    assert not (tmp_path / "bad").exists()
