"""The label check: its trees give scikit-learn's probabilities, and the rows it draws again come
back looking more like their class, with the class mix kept and the same seed giving the same rows."""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.ensemble import HistGradientBoostingClassifier

from diffusio.errors import UsageError
from diffusio.tabular import TableDiffusion
from diffusio.tabular.label_check import TreeEnsemble, class_probability, fit_label_check
from diffusio.tabular.redraw import BLUR_SHARE, BLURRED_BAR

SMALL = dict(width=64, depth=2, batch_size=256, sample_steps=12)


@pytest.mark.parametrize("classes", [2, 3, 5])
def test_the_trees_give_scikit_learns_probabilities(classes):
    rng = np.random.default_rng(classes)
    x = rng.normal(size=(1500, 6))
    y = np.digitize(x[:, 0] + 0.7 * x[:, 1] * x[:, 2], np.linspace(-1, 1, classes - 1))
    booster = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(x, y)
    trees = TreeEnsemble.from_sklearn(booster)
    new = rng.normal(size=(5000, 6))   # more rows than one walk's chunk
    np.testing.assert_allclose(trees.proba(new), booster.predict_proba(new), rtol=0, atol=1e-12)
    trees.real_percentiles = np.tile(np.linspace(0, 1, 101), (len(trees.labels), 1))
    back = TreeEnsemble.from_tensors(trees.tensors(), width=6, classes=classes)
    np.testing.assert_array_equal(back.proba(new), trees.proba(new))


def test_the_table_walk_reaches_the_leaves_the_matrix_walk_does(monkeypatch):
    """The check's own booster (15 leaves a tree) walks by a table per tree; the matrix walk, which
    larger trees take, must give the same scores to the bit, and both scikit-learn's."""
    import diffusio.tabular.label_check as label_check

    rng = np.random.default_rng(7)
    x = rng.normal(size=(3000, 5)).astype(np.float32)
    y = np.digitize(x[:, 0] + x[:, 1] * x[:, 2], [-0.5, 0.5])
    booster = HistGradientBoostingClassifier(random_state=0, **label_check.BOOSTER).fit(x, y)
    new = rng.normal(size=(5000, 5)).astype(np.float32)
    table = TreeEnsemble.from_sklearn(booster)
    assert table._matrices()[0].shape[1] <= 14 and table.raw(new[:1]) is not None and table._table is not None
    monkeypatch.setattr(label_check, "TABLE_CELLS", 0)
    matrix = TreeEnsemble.from_sklearn(booster)
    np.testing.assert_array_equal(table.raw(new), matrix.raw(new))
    assert matrix._table is None
    np.testing.assert_allclose(table.proba(new), booster.predict_proba(new), rtol=0, atol=1e-12)


def test_float32_rows_on_a_threshold_reach_the_leaves_float64_rows_do():
    """Thresholds are float64; the encoder's rows are float32: a row on either side of a threshold's
    float32 rounding (0.1 rounds up, 0.7 down) must go where its float64 copy goes."""
    stump = dict(feature=[0, 0, 0, 1, 0, 0], threshold=[0.1, 0, 0, 0.7, 0, 0], left=[1, 0, 0, 4, 0, 0],
                 right=[2, 0, 0, 5, 0, 0], leaf=[False, True, True, False, True, True], value=[0, -1, 1, 0, -2, 2])
    trees = TreeEnsemble(np.zeros(1), np.array([[0], [3]]), labels=np.array([0, 1]),
                         **{k: np.array(v, dtype=bool if k == "leaf" else float if k in ("threshold", "value") else int)
                            for k, v in stump.items()})
    near = [f(np.float32(t)) for t in (0.1, 0.7) for f in (lambda v: np.nextafter(v, np.float32(-1)), lambda v: v,
                                                       lambda v: np.nextafter(v, np.float32(2)))]
    rows = np.array([[a, b] for a in near for b in near], dtype=np.float32)
    np.testing.assert_array_equal(trees.raw(rows), trees.raw(rows.astype(np.float64)))
    assert sorted(set(trees.raw(rows)[:, 0])) == [-3.0, -1.0, 1.0, 3.0]


def test_a_class_the_check_never_saw_is_never_redrawn():
    x = np.random.default_rng(0).normal(size=(200, 2)).astype(np.float32)
    codes = np.where(x[:, 0] > 0, 2, 0)   # class 1 has no row
    check = fit_label_check(x, codes)
    p = class_probability(check, x[:4], np.array([1, 1, 0, 2]))
    assert p[0] == p[1] == 1.0 and 0 < p[2] < 1 and 0 < p[3] < 1
    assert fit_label_check(x, np.zeros(200, dtype=np.int64)) is None   # one class: nothing to check


def test_a_tampered_check_is_refused():
    x = np.random.default_rng(0).normal(size=(300, 3))
    good = fit_label_check(x, (x[:, 0] > 0).astype(np.int64)).tensors()
    assert TreeEnsemble.from_tensors(good, width=3, classes=2) is not None
    tampered = {k: v.clone() for k, v in good.items()}
    tampered["label_check.feature"][tampered["label_check.leaf"] == 0] = 7   # a column the model has not
    with pytest.raises(UsageError, match="do not fit the model"):
        TreeEnsemble.from_tensors(tampered, width=3, classes=2)
    for key, bad in (("labels", [0, 5]), ("labels", [1, 0]), ("labels", [0]), ("threshold", [[0.0, 1.0]])):
        tampered = dict(good, **{f"label_check.{key}": torch.tensor(bad)})
        with pytest.raises(UsageError, match="do not fit the model"):
            TreeEnsemble.from_tensors(tampered, width=3, classes=2)
    shared = {k: v.clone() for k, v in good.items()}   # two parents for one node: a DAG whose paths double per level
    inner = torch.nonzero(shared["label_check.leaf"] == 0).flatten()
    shared["label_check.right"][inner[0]] = shared["label_check.left"][inner[0]]
    with pytest.raises(UsageError, match="not trees"):
        TreeEnsemble.from_tensors(shared, width=3, classes=2)
    tampered = dict(good)
    del tampered["label_check.value"]
    with pytest.raises(UsageError, match="partial label check"):
        TreeEnsemble.from_tensors(tampered, width=3, classes=2)


def test_a_class_of_one_row_in_a_large_table_is_checked():
    """Above 10,000 rows scikit-learn's booster would stop early on a stratified split, which a class
    of one row breaks: the check turns early stopping off, and takes in-sample probabilities then."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10_001, 2))
    codes = (x[:, 0] > 0).astype(np.int64)
    codes[0] = 2
    check = fit_label_check(x, codes)
    assert check.labels.tolist() == [0, 1, 2] and check.real_percentiles.shape == (3, 101)


def overlapping(n=1500, seed=0):
    """The class is a threshold on a sum of two columns, x + y > 0: a rule a short fit blurs."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=n), rng.normal(size=n)
    return pd.DataFrame({"x": x, "y": y, "noise": rng.normal(size=n),
                         "k": np.where(x + y > 0.8, "hi", "lo").astype(object)})


@pytest.fixture(scope="module")
def blurry():
    return TableDiffusion(steps=150, seed=0, mix=0.0, **SMALL).fit(overlapping(), target="k")


def recognisable(model, rows):
    """The check's probability of each row's own class, and the real rows' matched bar of its class."""
    codes = model._class_codes(rows["k"])
    p = class_probability(model.check, model.encoder.encode(rows.drop(columns=["k"])), codes)
    return p, model.check.real_bar(codes, BLUR_SHARE)


def test_redraws_make_rows_look_like_their_class(blurry, tmp_path):
    plain = blurry.sample(1500, seed=1, redraws=0)
    assert blurry.redrawn == {"rows": 0, "redrawn": 0, "under_bar": 0}
    strict = blurry.sample(1500, seed=1, redraw_below=0.5)   # a fixed bar: every row under it is redrawn
    report = blurry.redrawn
    assert report["rows"] == 1500 and report["redrawn"] > 30 and report["under_bar"] < report["redrawn"]

    def obeys(rows):   # the rule itself, not the check: the share of rows on their class's side
        return ((rows.x + rows.y > 0.8) == (rows.k == "hi")).mean()

    assert obeys(strict) > obeys(plain) + 0.02, (obeys(plain), obeys(strict))
    assert (strict.k == plain.k).all()      # a row is drawn again for its own class: the mix is kept
    kept = (blurry.sample(1500, seed=1, redraw_below=0.0), blurry.sample(1500, seed=1, redraws=0))
    assert kept[0].equals(kept[1]) and kept[1].equals(plain)   # a bar of 0 redraws nothing
    # the default: only the classes the model draws less recognisably than the real rows are redrawn,
    # those under BLURRED_BAR
    p, real = recognisable(blurry, plain)
    blurred = [c for c in ("hi", "lo") if np.mean(p[plain.k == c] < real[plain.k == c]) > BLUR_SHARE + 0.02]
    assert [blurry.target.categories[c] for c in blurry.blurred] == blurred and len(blurred) == 1, blurred
    matched = blurry.sample(1500, seed=1)
    p, _ = recognisable(blurry, matched)
    assert 0 < blurry.redrawn["redrawn"] < report["redrawn"] and (matched.k == plain.k).all()
    assert np.mean(p[matched.k == blurred[0]] < BLURRED_BAR) < np.mean(recognisable(blurry, plain)[0][plain.k == blurred[0]] < BLURRED_BAR)
    assert matched[matched.k != blurred[0]].equals(plain[plain.k != blurred[0]])   # the other class is left as it is
    assert matched.equals(blurry.sample(1500, seed=1))         # same seed, same rows
    blurry.save(tmp_path / "m")
    again = TableDiffusion.load(tmp_path / "m")
    assert again.check is not None and again.sample(300, seed=4).equals(blurry.sample(300, seed=4))


def test_without_the_check_the_rows_are_those_of_before(blurry):
    bare = TableDiffusion(steps=150, seed=0, mix=0.0, label_check=False, **SMALL).fit(overlapping(), target="k")
    assert bare.check is None
    assert bare.sample(400, seed=2).equals(blurry.sample(400, seed=2, redraws=0))


def test_no_check_without_a_categorical_target():
    df = overlapping(300)
    assert TableDiffusion(steps=2, **SMALL).fit(df).check is None
    assert TableDiffusion(steps=2, **SMALL).fit(df, target="x").check is None


def test_redraws_without_a_check_are_refused():
    model = TableDiffusion(steps=2, **SMALL).fit(overlapping(300), target="x")
    assert len(model.sample(5, redraws=0)) == 5
    with pytest.raises(UsageError, match="need a label check"):
        model.sample(5, redraws=2)
    with pytest.raises(UsageError, match="need a label check"):
        model.sample(5, redraw_below=0.5)


@pytest.mark.parametrize("kwargs, message", [
    ({"seed": -1}, "seed must be a whole number"), ({"seed": 2 ** 32}, "seed must be"),
    ({"redraws": -1}, "redraws must be a whole number from 0 to 20"), ({"redraws": 21}, "redraws must be"),
    ({"redraws": 1.5}, "redraws must be"), ({"redraw_below": 1.5}, "redraw_below must be a probability"),
    ({"redraw_below": True}, "redraw_below must be"),
])
def test_bad_redraw_settings_are_named(kwargs, message):
    with pytest.raises(UsageError, match=message):
        TableDiffusion(**kwargs)


def test_bad_redraw_arguments_to_sample_are_named(blurry):
    with pytest.raises(UsageError, match="redraws must be"):
        blurry.sample(5, redraws=99)
    with pytest.raises(UsageError, match="redraw_below must be"):
        blurry.sample(5, redraw_below=-0.1)
    with pytest.raises(UsageError, match="seed must be"):
        blurry.sample(5, seed=-1)


def test_a_checked_table_of_independent_groups_is_mixed():
    """Above 1,000 rows, mixing is on by default only where it loses nothing pairwise (column groups
    uncorrelated with one another) and a label check redraws the rows it blurs."""
    rng = np.random.default_rng(0)
    n = 1200
    a, b = rng.normal(size=n), rng.normal(size=n)
    independent = pd.DataFrame({"a": a, "b": b, "k": np.where(a + b > 0, "y", "n").astype(object)})
    assert TableDiffusion(steps=1, **SMALL).fit(independent, target="k").mixed == 0.7
    assert TableDiffusion(steps=1, label_check=False, **SMALL).fit(independent, target="k").mixed == 0.0
    assert TableDiffusion(steps=1, mix=0.2, **SMALL).fit(independent, target="k").mixed == 0.2
    linked = independent.assign(b=0.3 * a + rng.normal(size=n))   # r about 0.3 across the two groups
    assert TableDiffusion(steps=1, **SMALL).fit(linked, target="k").mixed == 0.0
