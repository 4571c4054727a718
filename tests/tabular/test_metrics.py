"""The measures can fail: copies fail the privacy check, shuffled labels lose ML efficacy, a broken
column lowers its quality score."""

import numpy as np
import pandas as pd
import pytest

from diffusio.errors import UsageError
from diffusio.tabular.metrics import distance_to_closest_record, evaluate_table, ml_efficacy, quality


def draw(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame({"x": x, "z": x + rng.normal(0, 0.5, n), "label": np.where(x + rng.normal(0, 0.3, n) > 0,
                                                                                    "yes", "no").astype(object)})


def test_ml_efficacy_of_the_real_table_itself_is_one_and_of_noise_is_low():
    train, test = draw(600, 0), draw(300, 1)
    same = ml_efficacy(train, test, train, "label")
    assert same["metric"] == "macro-F1" and same["ratio"] == pytest.approx(1.0)
    shuffled = train.assign(label=train.label.sample(frac=1, random_state=0).to_numpy())
    assert ml_efficacy(train, test, shuffled, "label")["ratio"] < 0.8
    assert ml_efficacy(train, test, train, "z")["metric"] == "R2"


def test_copies_of_the_training_rows_fail_the_privacy_check():
    train, holdout = draw(500, 0), draw(500, 1)
    copied = distance_to_closest_record(train, holdout, train.sample(frac=1, random_state=2))
    assert not copied["passed"] and copied["synthetic_median"] == 0.0
    fresh = distance_to_closest_record(train, holdout, draw(500, 3))
    assert 0.35 < fresh["share_closer_to_train"] < 0.65


def test_quality_sees_a_broken_column():
    real = draw(400, 0)
    assert quality(real, draw(400, 1))["score"] > 0.85
    broken = draw(400, 1).assign(z=lambda t: t.z * 5 + 3)
    scores = quality(real, broken)
    assert scores["per_column"]["z"] < 0.5 < scores["per_column"]["x"]


def test_evaluate_table_measures_what_the_inputs_allow():
    real = draw(300, 0)
    assert set(evaluate_table(real, draw(300, 1))) == {"quality", "detection_auc"}
    full = evaluate_table(real, draw(300, 1), holdout=draw(300, 2), target="label")
    assert {"dcr", "ml_efficacy"} <= set(full)


def test_mismatched_columns_are_named():
    with pytest.raises(UsageError, match="columns differ"):
        quality(draw(50, 0), draw(50, 1).drop(columns="z"))
