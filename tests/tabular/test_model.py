"""TableDiffusion on tiny tables with known structure: it learns the dependency, obeys conditions,
and the same seed gives the same rows, resumed or not."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from diffusio.errors import UsageError
from diffusio.tabular import TableDiffusion

SMALL = dict(width=64, depth=2, batch_size=256, sample_steps=12)


def two_clusters(n=600, seed=0):
    """A category that decides a number: x ~ N(-3, 0.3) for 'a', N(+3, 0.3) for 'b'; 'shade' is
    independent of both, 'count' an integer column."""
    rng = np.random.default_rng(seed)
    k = rng.choice(["a", "b"], n, p=[0.7, 0.3]).astype(object)
    x = np.where(k == "a", -3.0, 3.0) + rng.normal(0, 0.3, n)
    return pd.DataFrame({"k": k, "x": x, "shade": rng.choice(["dark", "light", "rare"], n, p=[0.5, 0.47, 0.03]),
                         "count": rng.integers(0, 10, n)})


@pytest.fixture(scope="module")
def fitted():
    return TableDiffusion(steps=700, seed=0, **SMALL).fit(two_clusters(), target="k")


@pytest.fixture(scope="module")
def unconditional():
    return TableDiffusion(steps=700, seed=0, **SMALL).fit(two_clusters())


@pytest.mark.slow
@pytest.mark.parametrize("which", ["fitted", "unconditional"])
def test_the_category_still_decides_the_number(which, request):
    rows = request.getfixturevalue(which).sample(2000, seed=1)
    consistent = ((rows.k == "a") == (rows.x < 0)).mean()
    assert consistent > 0.9        # the dependency: independent marginals would give 0.7*0.7 + 0.3*0.3 = 0.58
    assert rows.loc[rows.k == "a", "x"].median() < -2.5 and rows.loc[rows.k == "b", "x"].median() > 2.5
    assert abs((rows.k == "a").mean() - 0.7) < 0.06       # the category's own frequency
    assert rows["count"].dtype == np.int64 and rows["count"].between(0, 9).all()


def test_condition_on_the_target_is_exact(fitted):
    rows = fitted.sample(300, seed=2, condition={"k": "b"})
    assert (rows.k == "b").all() and rows.x.mean() > 2.4


def test_condition_on_another_column_by_rejection(fitted):
    rows = fitted.sample(200, seed=3, condition={"shade": "light"})
    assert len(rows) == 200 and (rows.shade == "light").all()


@pytest.mark.parametrize("condition, message", [
    ({"k": "c"}, "never saw that value"),
    ({"x": "1.0"}, "numeric"),
    ({"nope": "a"}, "not in the table"),
    ({"k": "a", "shade": "dark"}, "one {column: value} pair"),
])
def test_bad_conditions_are_named(fitted, condition, message):
    with pytest.raises(UsageError, match=message):
        fitted.sample(10, condition=condition)


def test_too_rare_a_condition_is_an_error_not_a_short_table(fitted, monkeypatch):
    import diffusio.tabular.model as model_module

    monkeypatch.setattr(model_module, "MAX_REJECTION_DRAWS", 1)
    with pytest.raises(UsageError, match="too rare"):
        fitted.sample(5000, seed=0, condition={"shade": "rare"})


def test_same_seed_same_rows_and_save_load_round_trip(fitted, tmp_path):
    first, again = fitted.sample(50, seed=7), fitted.sample(50, seed=7)
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(fitted.sample(50, seed=8))
    fitted.save(tmp_path / "m")
    pd.testing.assert_frame_equal(TableDiffusion.load(tmp_path / "m").sample(50, seed=7), first)


def test_progress_counts_the_sampler_steps_and_changes_no_row(fitted, capsys):
    quiet = fitted.sample(300, seed=5, redraw_below=0.99)      # a bar so high that rows are drawn again
    shown = fitted.sample(300, seed=5, redraw_below=0.99, progress=True)
    pd.testing.assert_frame_equal(shown, quiet)
    assert fitted.redrawn["redrawn"] > 0
    done = re.findall(r"sample: 100%.*?(\d+)/(\d+)", capsys.readouterr().err)
    assert done and done[-1][0] == done[-1][1]
    assert int(done[-1][0]) > fitted.sample_steps and int(done[-1][0]) % fitted.sample_steps == 0  # the rounds too


def test_bf16_sampling_is_repeatable_and_keeps_the_table(fitted, tmp_path):
    """bfloat16 matrix products change the rows in their last digits, not what the table holds; the
    model's setting is saved, and a call can override it."""
    fast = fitted.sample(2000, seed=4, bf16="on")
    pd.testing.assert_frame_equal(fast, fitted.sample(2000, seed=4, bf16="on"))
    exact = fitted.sample(2000, seed=4)
    assert not fast.equals(exact)
    assert ((fast.k == "a") == (fast.x < 0)).mean() > 0.9      # the dependency survives
    assert abs(fast.x.mean() - exact.x.mean()) < 0.1 and abs(fast.x.std() - exact.x.std()) < 0.1
    assert (fast.k == exact.k).all()                            # the target's classes are drawn before the network
    with pytest.raises(UsageError, match="bf16 must be"):
        fitted.sample(5, bf16="fast")
    fitted.save(tmp_path / "m")
    saved = TableDiffusion.load(tmp_path / "m")
    saved.bf16 = "on"
    pd.testing.assert_frame_equal(saved.sample(2000, seed=4), fast)
    pd.testing.assert_frame_equal(saved.sample(2000, seed=4, bf16="off"), exact)


def test_same_seed_same_model():
    df = two_clusters(200)
    a = TableDiffusion(steps=30, seed=4, **SMALL).fit(df).sample(20, seed=0)
    b = TableDiffusion(steps=30, seed=4, **SMALL).fit(df).sample(20, seed=0)
    pd.testing.assert_frame_equal(a, b)


def test_resume_equals_an_uninterrupted_run(tmp_path):
    df = two_clusters(200)
    whole = TableDiffusion(steps=60, seed=5, **SMALL).fit(df, target="k")
    TableDiffusion(steps=25, every=10, seed=5, **SMALL).fit(df, target="k", out=tmp_path)
    resumed = TableDiffusion(steps=60, every=10, seed=5, **SMALL).fit(df, target="k", out=tmp_path, resume=True)
    assert resumed.run.step == 60
    pd.testing.assert_frame_equal(resumed.sample(30, seed=0), whole.sample(30, seed=0))
    pd.testing.assert_frame_equal(TableDiffusion.load(tmp_path).sample(30, seed=0), whole.sample(30, seed=0))


def test_cooldown_keeps_the_rate_until_its_fraction_and_resumes_exactly(tmp_path):
    """A cool-down over the last half of 40 steps leaves the first 20 at the constant rate: 20 plain
    steps resumed to 40 with the cool-down equal an uninterrupted cool-down run, and differ from no
    cool-down; a run stopped inside its cool-down says so."""
    df = two_clusters(200)
    cooled = TableDiffusion(steps=40, cooldown=0.5, seed=5, **SMALL).fit(df, target="k")
    plain = TableDiffusion(steps=40, seed=5, **SMALL).fit(df, target="k")
    TableDiffusion(steps=20, every=10, seed=5, **SMALL).fit(df, target="k", out=tmp_path)
    resumed = TableDiffusion(steps=40, cooldown=0.5, every=10, seed=5, **SMALL).fit(df, target="k", out=tmp_path,
                                                                                   resume=True)
    pd.testing.assert_frame_equal(resumed.sample(30, seed=0), cooled.sample(30, seed=0))
    assert not plain.sample(30, seed=0).equals(cooled.sample(30, seed=0))


def test_an_unfinished_cooldown_is_reported(capsys, monkeypatch):
    from types import SimpleNamespace

    import diffusio.generative.training.loop as loop

    clock = iter(range(0, 10 ** 6, 100))  # every step takes 100 s, so a 3-second budget ends after one
    monkeypatch.setattr(loop, "time", SimpleNamespace(time=lambda: next(clock)))
    model = TableDiffusion(steps=50, minutes=0.05, cooldown=0.5, seed=5, **SMALL).fit(two_clusters(100))
    assert model.run.step == 1
    assert "cool-down is unfinished (stopped at step 1 of 50" in capsys.readouterr().err


def test_default_steps_grow_with_the_rows(monkeypatch, tmp_path):
    """With no steps given, a fit plans default_steps of its table's rows, and the saved model says so."""
    from types import SimpleNamespace

    import diffusio.generative.training.loop as loop
    from diffusio.tabular.model import default_steps

    steps = [default_steps(rows) for rows in (100, 999, 1_000, 5_000, 20_000, 30_000, 40_000, 10 ** 7)]
    assert steps == sorted(steps) and steps[0] == steps[1] < steps[2] == steps[3] < steps[4] < steps[5] < steps[6] == steps[7]
    clock = iter(range(0, 10 ** 6, 100))  # every step takes 100 s: a 3-second budget ends after one
    monkeypatch.setattr(loop, "time", SimpleNamespace(time=lambda: next(clock)))
    model = TableDiffusion(minutes=0.05, seed=5, **SMALL).fit(two_clusters(1200), out=tmp_path)
    assert model.run.step == 1 and model.total_steps == default_steps(1200) == 6000
    assert TableDiffusion.load(tmp_path).total_steps == 6000


def test_training_noise_levels_follow_p_mean_and_p_std(monkeypatch):
    """The loss draws log sigma from N(p_mean, p_std^2): the fit passes both on, and they change the model."""
    import diffusio.tabular.model as tm

    seen, loss = [], tm.edm_loss
    monkeypatch.setattr(tm, "edm_loss", lambda *a: seen.append(a[-2:]) or loss(*a))
    df = two_clusters(200)
    shifted = TableDiffusion(steps=20, p_mean=0.5, p_std=1.0, seed=5, **SMALL).fit(df, target="k")
    assert set(seen) == {(0.5, 1.0)}
    default = TableDiffusion(steps=20, seed=5, **SMALL).fit(df, target="k")
    assert not shifted.sample(30, seed=0).equals(default.sample(30, seed=0))


def test_resume_with_other_settings_is_refused(tmp_path):
    df = two_clusters(100)
    TableDiffusion(steps=5, seed=0, **SMALL).fit(df, out=tmp_path)
    with pytest.raises(UsageError, match="width"):
        TableDiffusion(steps=10, seed=0, **{**SMALL, "width": 32}).fit(df, out=tmp_path, resume=True)


@pytest.mark.parametrize("kwargs, message", [
    ({"steps": 0}, "steps must be a positive"), ({"lr": 2.0}, "lr must be"), ({"minutes": -1}, "minutes"),
    ({"sampler": "adaptive"}, "sampler must be"), ({"bf16": "yes"}, "bf16 must be auto, on or off"),
    ({"cooldown": 1.5}, "cooldown must be a fraction in \\[0, 1\\] of steps"),
    ({"p_std": 0}, "p_std must be above 0"), ({"p_mean": float("nan")}, "p_mean must be a finite number"),
])
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(UsageError, match=message):
        TableDiffusion(**kwargs)


def test_a_network_too_large_for_the_machine_is_named(tmp_path):
    with pytest.raises(UsageError, match="a network of width=1000000000 and depth=3 needs about"):
        TableDiffusion(steps=1, width=10 ** 9).fit(two_clusters(50), out=tmp_path / "run")
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_missing_target_and_unfitted_model_are_named():
    with pytest.raises(UsageError, match="target column 'income' is not in the table"):
        TableDiffusion(steps=1).fit(two_clusters(50), target="income")
    with pytest.raises(UsageError, match="not fitted"):
        TableDiffusion().sample(3)


def test_an_image_model_folder_is_not_a_table_model():
    from diffusio.generative.checkpoint.models import WEIGHTS_DIR

    with pytest.raises(UsageError, match="not a table model"):
        TableDiffusion.load(WEIGHTS_DIR / "fashion")


def test_missing_values_come_back_at_their_rate():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"v": rng.normal(size=800), "k": rng.choice(["p", "q"], 800)})
    df.loc[rng.random(800) < 0.25, "v"] = np.nan
    # mix=0: this 300-step fit lands near the tolerance either way (0.317 plain, 0.339 mixed, for 0.28);
    # mixing moves a column's value and its missing indicator together, so it keeps the rate by construction
    rows = TableDiffusion(steps=300, seed=0, mix=0.0, **SMALL).fit(df).sample(2000, seed=0)
    assert abs(rows.v.isna().mean() - df.v.isna().mean()) < 0.04


def test_guidance_sharpens_what_tells_the_classes_apart(tmp_path):
    """Classifier-free guidance on the target: a classifier trained on the real rows is surer of
    the class each synthetic row was drawn for at guidance 3 than at 1 (wine, 300 steps: mean
    probability 0.945 -> 0.996); guidance 1 is the plain conditional model, and a bad scale is
    refused by name."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from diffusio.tabular import load_table

    df, target = load_table("wine")
    # redraws=0: the label check would redraw the unsure rows at either scale (test_label_check.py)
    model = TableDiffusion(steps=300, seed=0, mix=0.0, redraws=0, **SMALL).fit(df, target=target)
    judge = make_pipeline(StandardScaler(), LogisticRegression()).fit(df.drop(columns=[target]), df[target])
    sure = {}
    for scale in (1.0, 3.0):
        rows = model.sample(600, seed=2, guidance=scale)
        proba = judge.predict_proba(rows.drop(columns=[target]))
        drawn = [list(judge.classes_).index(value) for value in rows[target]]
        sure[scale] = proba[np.arange(len(rows)), drawn].mean()
    assert sure[3.0] > sure[1.0] + 0.03, sure
    assert model.sample(50, seed=2).equals(model.sample(50, seed=2, guidance=model.guidance))
    with pytest.raises(UsageError, match="guidance"):
        model.sample(5, guidance=-1)
    # guidance in an interval of noise levels: one spanning every level is plain guidance, one above
    # them all (sampling starts at sigma 10) is the conditional model, the same rows bit for bit
    guided, plain = model.sample(50, seed=2, guidance=3.0), model.sample(50, seed=2, guidance=1.0)
    assert model.sample(50, seed=2, guidance=3.0, guidance_interval=(0, float("inf"))).equals(guided)
    assert model.sample(50, seed=2, guidance=3.0, guidance_interval=(20, 30)).equals(plain)
    between = model.sample(50, seed=2, guidance=3.0, guidance_interval=(1, 10))
    assert not between.equals(guided) and not between.equals(plain)
    with pytest.raises(UsageError, match="guidance_interval must satisfy 0 <= lo < hi"):
        model.sample(5, guidance=3.0, guidance_interval=(5, 1))
    # the model's own interval is saved as plain JSON and comes back as it was; (0, inf) is "every level"
    model.guidance, model.guidance_interval = 3.0, (1.0, 10.0)
    model.save(tmp_path / "m")
    json.loads((tmp_path / "m" / "config.json").read_text(), parse_constant=pytest.fail)  # no Infinity/NaN
    again = TableDiffusion.load(tmp_path / "m")
    assert again.guidance_interval == (1.0, 10.0) and again.sample(50, seed=2).equals(between)
    assert TableDiffusion(guidance_interval=(0, float("inf"))).guidance_interval is None
