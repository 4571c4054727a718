"""Synthetic labelled datasets: the right mix, readable as training data, checked by a classifier."""

import numpy as np
import pytest

from diffusio.cli.main import main
from diffusio.generative import Generator
from diffusio.generative.evaluation.classifier import fit_classifier, load_classifier
from diffusio.generative.data.datasets import load_dataset
from diffusio.errors import UsageError
from diffusio.generative.trust.synthesize import (check, portable_model, save_npz, shard_seed, synthesis_settings,
                                                  synthesize)


@pytest.fixture(scope="module")
def student():
    return Generator.load("fashion-fast")


def test_uniform_mix_and_labels_a_classifier_agrees_with(student):
    data = synthesize(student, 6, steps=1, seed=0)
    assert data["images"].shape == (60, 28, 28) and data["images"].dtype == np.uint8
    assert np.bincount(data["labels"]).tolist() == [6] * 10
    report = check(data, load_classifier("fashion-mnist"))
    assert report["label_agreement"] >= 0.9 and report["p_value"] > 0.01
    subset = synthesize(student, 3, classes=["Bag", "7"], steps=1)
    assert sorted(set(subset["labels"].tolist())) == [7, 8]


def test_workers_get_a_shipped_model_by_name_and_a_run_folder_by_path(student, tmp_path):
    """A worker on another machine has the package in another folder: it must load a shipped model
    by its name, never by the client's install path; a run folder keeps its path."""
    assert portable_model(student.model.path) == "fashion-fast"
    assert portable_model("fashion-guide") == "fashion-guide"
    run = tmp_path / "fashion-fast"  # a run folder that happens to share a shipped name
    run.mkdir()
    (run / "config.json").write_text("{}")
    assert portable_model(run) == str(run)


def test_autoguidance_reaches_the_sampler_and_fashion_synthesises_with_it_alone(tmp_path):
    teacher = Generator.load("fashion")
    guided = synthesize(teacher, 1, classes=["Bag"], steps=2, seed=3, watermark=False)  # the model's settings
    assert synthesis_settings(teacher)["guidance"] == 1.0 and synthesis_settings(teacher)["autoguidance"] == 2.0
    # at every noise level, as docs/trust.md measured it, not in the interval fashion's pictures take
    assert synthesis_settings(teacher)["autoguidance_interval"] == "all"
    kw = dict(label=[8], n=1, steps=2, seed=shard_seed(3, 0), guidance=1.0, autoguidance=2.0, guide="fashion-guide",
              watermark=False)
    direct = teacher.generate(autoguidance_interval="all", **kw)
    plain = synthesize(teacher, 1, classes=["Bag"], steps=2, seed=3, autoguidance=1.0, watermark=False)
    assert np.array_equal(guided["images"], direct) and not np.array_equal(guided["images"], plain["images"])
    assert not np.array_equal(direct, teacher.generate(**kw))  # the pictures' own interval
    out = tmp_path / "s.npz"
    assert main(["synthesize", "fashion", "--per-class", "1", "--classes", "Bag", "--steps", "2", "--seed", "3",
                 "--autoguidance", "2", "--guide", "fashion-guide", "--no-watermark", "-o", str(out)]) == 0
    assert np.array_equal(np.load(out)["images"], guided["images"])
    # a model without a synthesis block samples as it generates; given settings always win
    assert synthesis_settings(Generator.load("fashion-fast"))["guidance"] is None
    assert synthesis_settings(teacher, guidance=3.0)["guidance"] == 3.0
    with pytest.raises(UsageError, match="unknown synthesis settings"):
        synthesis_settings(teacher, cfg=2)


@pytest.mark.slow
def test_npz_round_trip_trains_a_classifier(student, tmp_path):
    data = synthesize(student, 20, steps=1, seed=1)
    save_npz(tmp_path / "s.npz", data, {"model": "fashion-fast"})
    ds = load_dataset(str(tmp_path / "s.npz"))
    assert len(ds) == 200 and ds.class_names == student.class_names
    assert np.array_equal(ds.labels, data["labels"])
    clf = fit_classifier(ds.images, ds.labels, ds.class_names, steps=60, seed=0)
    test = load_dataset("fashion-mnist", "test")
    assert (clf.predict(test.images[:500]) == test.labels[:500]).mean() > 0.5  # learnt from synthetic data alone


@pytest.mark.slow
def test_cli_synthesize_then_classifier(tmp_path, capsys):
    out = tmp_path / "s.npz"
    assert main(["synthesize", "fashion-fast", "--per-class", "3", "--steps", "1", "-o", str(out)]) == 0
    assert "agrees with" in capsys.readouterr().out
    assert main(["classifier", "--data", str(out), "--test", "fashion-mnist", "--out", str(tmp_path / "c"),
                 "--epochs", "1", "--context"]) == 0
    assert "with random parts hidden" in capsys.readouterr().out
    clf = load_classifier(tmp_path / "c")
    assert clf.context and 0 <= clf.hidden_test_accuracy <= 1


@pytest.mark.parametrize("argv,message", [
    (["synthesize", "fashion-fast", "-o", "s.png"], "should end in .npz"),
    (["synthesize", "fashion-fast", "--classes", "Hat", "-o", "s.npz"], "unknown label 'Hat'"),
    (["classifier", "--data", "junk.npz", "--out", "c"], "cannot read junk.npz"),
    (["classifier", "--data", "ok.npz", "--out", "c"], "--test fashion-mnist"),
])
def test_bad_synthesize_input(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "junk.npz").write_bytes(b"PK not really")
    save_npz(tmp_path / "ok.npz", {"images": np.zeros((2, 28, 28), np.uint8), "labels": np.array([0, 1]),
                                   "class_names": ["a", "b"]})
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "s.npz").exists() and not (tmp_path / "c").exists()
