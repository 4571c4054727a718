"""The class head: `fashion`'s shipped one used by default, fitted from samples, tied to the weights."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

from diffusio.cli.main import main
from diffusio.errors import UsageError
from diffusio.generative.checkpoint.models import WEIGHTS_DIR
from diffusio.generative.data.datasets import load_dataset, to_uint8
from diffusio.search import ImageIndex
from diffusio.search.features import DiffusionFeatures
from diffusio.search.head import HEAD_FILE, fit_head_from_samples, posterior, shipped_head


def classes_of(result, classes):
    return [classes[Path(h.path).stem] for h in result.hits]


@pytest.fixture(scope="module")
def shipped(collection):
    index = ImageIndex.empty("fashion")  # no bank given: the shipped head, nothing generated
    index.add(collection[0])
    return index


def test_fashion_ships_a_head_for_its_weights_and_indexes_use_it(shipped):
    head, meta = shipped_head(shipped.features, 10)
    assert shipped.head_info["source"] == "shipped" and np.array_equal(shipped.head, head)
    assert meta["per_class"] >= 2000 and all(made["autoguidance"] == 2.0 for made in meta["samples_made_with"])
    assert shipped.header()["class_head"]["per_class"] == meta["per_class"]


@pytest.mark.parametrize("text, cls", [("Trouser", "Trouser"), ("a pair of jeans", "Trouser"),
                                       ("a cozy knit sweater", "Pullover"), ("a winter coat", "Coat"),
                                       ("a flannel shirt", "Shirt"), ("hiking boots", "Ankle boot")])
def test_text_ranks_by_the_class_posterior(shipped, collection, text, cls):
    result = shipped.query(text, k=4, rerank=0)
    assert classes_of(result, collection[1]).count(cls) >= 3, (text, classes_of(result, collection[1]), result.notes)
    sims = [h.similarity for h in result.hits]
    assert all(0 <= s <= 1 for s in sims) and sims == sorted(sims, reverse=True)  # probabilities, best first
    expected = shipped.posteriors() @ shipped._class_weights(text, shipped.features.text_condition(text), [])
    assert np.isclose(sims[0], expected.max(), atol=1e-5)


def test_a_bare_class_name_means_that_class(shipped):
    # MiniLM alone puts "Trouser" nearest to the footwear; naming a class exactly overrides it
    result = shipped.query("trouser", k=1, rerank=0)
    assert result.notes == ["the query names the class Trouser"]
    assert shipped.query("top", k=1, rerank=0).notes == ["the query names the class T-shirt/top"]


def test_posteriors_read_back_from_the_stored_vectors(shipped, collection):
    from diffusio.search.files import to_float

    direct = posterior(shipped.features.embed_with_block(to_float(shipped.thumbs))[1], shipped.head)
    assert np.allclose(shipped.posteriors(), direct, atol=1e-4)
    assert np.allclose(shipped.posteriors().sum(1), 1, atol=1e-4)


def labelled_npz(path, per_class, names=None):
    test = load_dataset("fashion-mnist", "test")
    picks = np.concatenate([np.flatnonzero(test.labels == c)[-per_class:] for c in range(10)])
    np.savez(path, images=to_uint8(test.images[picks]), labels=test.labels[picks],
             class_names=np.array(names or test.class_names))
    return path


@pytest.fixture(scope="module")
def run_copy(tmp_path_factory):
    """A run folder holding fashion's weights (what a user's trained model looks like), no head."""
    folder = tmp_path_factory.mktemp("run") / "mine"
    shutil.copytree(WEIGHTS_DIR / "fashion", folder, ignore=shutil.ignore_patterns(HEAD_FILE))
    return folder


def test_fit_from_samples_writes_a_head_the_index_finds(run_copy, tmp_path):
    samples = labelled_npz(tmp_path / "samples.npz", 20)
    path, meta = fit_head_from_samples(run_copy, samples)
    assert path == run_copy / HEAD_FILE and meta["per_class"] == 20 and meta["accuracy_on_samples"] > 0.8
    fx = DiffusionFeatures.load(run_copy)
    head, read = shipped_head(fx, 10)
    assert read == meta and head.shape == (10, fx.block_dim + 1)
    index = ImageIndex.empty(run_copy)
    assert index.head_info["source"] == "shipped" and np.array_equal(index.head, head)


def test_several_sample_files_are_pooled(tmp_path):
    both = labelled_npz(tmp_path / "both.npz", 6)
    with np.load(both) as z:   # the same images split in two files, as two synthesize runs write them
        first, second = z["labels"] < 5, z["labels"] >= 5
        for name, keep in (("a.npz", first), ("b.npz", second)):
            np.savez(tmp_path / name, images=z["images"][keep], labels=z["labels"][keep], class_names=z["class_names"])
    one, meta_one = fit_head_from_samples("fashion", both, tmp_path / "one.safetensors")
    two, meta_two = fit_head_from_samples("fashion", [tmp_path / "a.npz", tmp_path / "b.npz"],
                                          tmp_path / "two.safetensors")
    fx = DiffusionFeatures.load("fashion")
    with safe_open(str(one), "numpy") as f1, safe_open(str(two), "numpy") as f2:
        assert np.allclose(f1.get_tensor("head"), f2.get_tensor("head"), atol=1e-4)
    assert meta_two["samples"] == ["a.npz", "b.npz"] and meta_two["per_class"] == 6
    assert meta_two["accuracy_on_samples"] == meta_one["accuracy_on_samples"]
    with pytest.raises(UsageError, match="at least one"):
        fit_head_from_samples("fashion", [], tmp_path / "h.safetensors")
    assert fx.block_dim == 96 * 7 * 7


def test_a_head_of_other_weights_is_ignored_and_a_broken_one_refused(run_copy, tmp_path):
    fx = DiffusionFeatures.load(run_copy)
    head = np.zeros((10, fx.block_dim + 1), np.float32)
    meta = {"model_sha256": "0" * 64, "features": None}
    save_file({"head": head}, str(run_copy / HEAD_FILE), metadata={"format": "diffusio-search-head",
                                                                  "meta": json.dumps(meta)})
    with pytest.warns(UserWarning, match="not used.*diffusio search head"):
        assert shipped_head(fx, 10) is None  # retrained weights: the index draws a bank instead
    (run_copy / HEAD_FILE).write_bytes(b"not safetensors")
    with pytest.raises(UsageError, match="cannot read the class head"):
        ImageIndex.empty(run_copy)
    (run_copy / HEAD_FILE).unlink()


def test_samples_must_match_the_model(tmp_path):
    other = labelled_npz(tmp_path / "other.npz", 2, names=[f"c{i}" for i in range(10)])
    with pytest.raises(UsageError, match="not with fashion's classes"):
        fit_head_from_samples("fashion", other, tmp_path / "h.safetensors")
    good = labelled_npz(tmp_path / "good.npz", 2)
    for c in (0, -1, float("nan"), True):
        with pytest.raises(UsageError, match="c must be a positive number"):
            fit_head_from_samples("fashion", good, tmp_path / "h.safetensors", c=c)
    with pytest.raises(UsageError, match="must end in"):
        fit_head_from_samples("fashion", good, tmp_path / "h.npz")
    assert not list(tmp_path.glob("h.*"))


def test_cli_head(tmp_path, capsys):
    samples = labelled_npz(tmp_path / "s.npz", 3)
    out = tmp_path / "head.safetensors"
    assert main(["search", "head", "fashion", "--samples", str(samples), "-o", str(out), "--c", "3"]) == 0
    assert "3+ samples per class" in capsys.readouterr().out and out.is_file()
    assert main(["search", "head", "fashion", "--samples", str(samples), str(samples), "-o", str(out)]) == 0
    assert "6+ samples per class" in capsys.readouterr().out
    assert main(["search", "head", "fashion", "--samples", str(tmp_path / "missing.npz"), "-o", str(out)]) == 2
    assert "cannot read" in capsys.readouterr().err
