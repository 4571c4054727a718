"""Dataset curation on real digits with planted problems: found, removed, and the copy trains."""

import json

import numpy as np
import pytest

from diffusio.cli.main import main
from diffusio.generative.trust.curate import find_problems, phash, write_dataset
from diffusio.generative.data.datasets import load_dataset, to_uint8


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """mnist5k digits plus an exact copy, a near copy and a garbage image in class 3."""
    ds = load_dataset("mnist5k")
    pixels, labels = to_uint8(ds.images)[:600].copy(), ds.labels[:600].copy()
    near = pixels[20].copy()
    near[12:16, 12:16] = np.clip(near[12:16, 12:16].astype(int) + 40, 0, 255)  # a few pixels touched
    noise = np.random.default_rng(0).integers(0, 255, (28, 28), dtype=np.uint8)
    pixels = np.concatenate([pixels, pixels[10:11], near[None], noise[None]])
    labels = np.concatenate([labels, labels[10:11], labels[20:21], [3]])
    folder = write_dataset(tmp_path_factory.mktemp("planted") / "data", {"train": (pixels, labels)}, ds.class_names)
    return folder, pixels, labels


def test_planted_problems_are_found(planted):
    _, pixels, labels = planted
    report = find_problems(pixels, labels)
    assert report["exact_duplicates"] == [[10, 600]]
    assert [20, 601] in report["near_duplicates"]
    assert 602 in [o["index"] for o in report["outliers"]]
    keep = report["_keep"]
    assert not keep[600] and not keep[601] and not keep[602] and keep[10] and keep[20]
    assert report["removed"] == (~keep).sum() <= 3 + 0.015 * len(pixels)  # few real digits flagged


def test_perceptual_hash_tolerates_small_changes_only(planted):
    _, pixels, _ = planted
    h = phash(pixels[[20, 601, 21]])
    assert np.bitwise_count(h[0] ^ h[1]) <= 6 < np.bitwise_count(h[0] ^ h[2])


@pytest.mark.slow
def test_cli_writes_a_cleaned_copy_that_trains(planted, tmp_path, capsys):
    folder, pixels, _ = planted
    out = tmp_path / "clean"
    assert main(["curate", str(folder), "-o", str(out), "--picture", str(tmp_path / "p.png")]) == 0
    report = json.loads((out / "report.json").read_text())
    cleaned = load_dataset(str(out))
    assert len(cleaned) == report["kept"] == len(pixels) - report["removed"]
    assert cleaned.class_names == load_dataset("mnist5k").class_names
    assert (tmp_path / "p.png").stat().st_size > 0
    assert main(["train", "--data", str(out), "--out", str(tmp_path / "run"), "--steps", "1", "--base", "8",
                 "--mults", "1,2", "--every", "0", "--quiet"]) == 0


@pytest.mark.parametrize("extra,message", [
    (["--near-bits", "70"], "--near-bits must be in 0..64"),
    (["--near-diff", "-1"], "--near-diff must be in [0, 2]"),
    (["--outlier-z", "0"], "--outlier-z must be a finite number > 0"),
    (["--picture", "p.jpg"], "--picture must end in .png"),
])
def test_bad_curate_arguments(tmp_path, monkeypatch, capsys, extra, message):
    monkeypatch.chdir(tmp_path)
    assert main(["curate", "digits", "-o", "clean", *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "clean").exists()


def test_existing_output_is_never_overwritten(tmp_path, capsys):
    out = tmp_path / "clean"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    assert main(["curate", "digits", "-o", str(out)]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert (out / "mine.txt").read_text() == "keep me" and len(list(out.iterdir())) == 1
