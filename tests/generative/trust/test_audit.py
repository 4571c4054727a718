import pytest
"""Memorisation and bias audits: the copy criteria catch copies and pass fresh images; CLI reports."""

import json

import numpy as np

from diffusio.cli.main import main
from diffusio.generative.trust.audit import copy_criteria, nearest
from diffusio.generative.data.datasets import load_dataset


def test_nearest_agrees_with_brute_force():
    rng = np.random.default_rng(0)
    q, r = rng.normal(size=(37, 20)), rng.normal(size=(300, 20))
    d, i = nearest(q, r, 3, chunk=8)
    full = np.linalg.norm(q[:, None] - r[None], axis=2)
    assert np.array_equal(i, np.argsort(full, 1)[:, :3])
    assert np.allclose(d, np.sort(full, 1)[:, :3], atol=1e-4)


def test_copies_of_training_images_are_flagged_and_other_test_images_are_not():
    train = load_dataset("fashion-mnist", "train").images[:5000]
    test = load_dataset("fashion-mnist", "test").images[:200]
    rng = np.random.default_rng(0)
    copies = train[:50] + rng.normal(0, 0.01, train[:50].shape).astype(np.float32)
    flagged = copy_criteria(copies, train)
    assert (flagged["gu"] < 1 / 3).all() and (flagged["carlini"] < 1 / 3).all()
    assert np.array_equal(flagged["index"], np.arange(50))
    fresh = copy_criteria(test, train)
    assert (fresh["gu"] < 1 / 3).mean() < 0.05


@pytest.mark.slow
def test_audit_commands(tmp_path, capsys):
    assert main(["audit", "memorization", "fashion", "--n", "12", "--steps", "4",
                 "--json", str(tmp_path / "m.json"), "--picture", str(tmp_path / "pairs.png")]) == 0
    report = json.loads((tmp_path / "m.json").read_text())
    assert 0 <= report["pixel"]["gu_fraction"] <= 1 and len(report["closest_pairs"]) == 8
    assert (tmp_path / "pairs.png").stat().st_size > 0
    assert main(["audit", "bias", "fashion", "--n", "30", "--steps", "4", "--per-prompt", "3", "--balance",
                 "--json", str(tmp_path / "b.json"), "--picture", str(tmp_path / "c.png")]) == 0
    report = json.loads((tmp_path / "b.json").read_text())
    assert report["target_mix"] == [0.1] * 10 and abs(sum(report["sample_mix"]) - 1) < 1e-6
    assert np.array(report["confusion"]).sum() == 30
    capsys.readouterr()
    assert main(["audit", "bias", "fashion", "--picture", str(tmp_path / "c.jpg")]) == 2
    assert "should end in .png" in capsys.readouterr().err
