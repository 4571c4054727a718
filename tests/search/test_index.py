"""ImageIndex on forty real images: the right class first, incremental add = rebuild, refusals."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from diffusio.errors import UsageError
from diffusio.search import ImageIndex
from diffusio.search.api import index_folder, query_index

from .conftest import BANK


def classes_of(result, classes):
    return [classes[Path(h.path).stem] for h in result.hits]


@pytest.mark.parametrize("text, cls", [("a pair of trousers", "Trouser"), ("a handbag", "Bag"),
                                       ("an ankle boot", "Ankle boot"), ("running shoes", "Sneaker"),
                                       ("a summer dress", "Dress"), ("beach sandals", "Sandal")])
def test_right_class_ranks_first_for_an_unambiguous_query(built, collection, text, cls):
    result = built.query(text, k=4, rerank=8)
    found = classes_of(result, collection[1])
    assert found[0] == cls, (text, found, result.notes)
    assert found.count(cls) >= 2, (text, found)
    assert result.reranked == 4 and all(h.text_score is not None for h in result.hits)
    assert [h.rank for h in result.hits] == [1, 2, 3, 4]
    assert all(a.score >= b.score for a, b in zip(result.hits, result.hits[1:]))


def test_query_by_example_finds_the_image_and_its_class(built, collection):
    folder, classes = collection
    result = built.query(image=folder / "20.png", k=4)  # a sandal
    assert Path(result.hits[0].path).stem == "20" and result.hits[0].similarity > 0.999
    assert classes_of(result, classes).count("Sandal") >= 2
    assert result.reranked == 0 and result.hits[0].text_score is None


@pytest.mark.slow  # three index builds and four reranked queries
def test_incremental_add_equals_a_rebuild(collection, tmp_path):
    folder, _ = collection
    part = tmp_path / "part"
    part.mkdir()
    for p in sorted(folder.glob("*.png"))[:15]:
        shutil.copy(p, part / p.name)
    first = index_folder(part, tmp_path / "a.index", **BANK)[0]
    assert len(first) == 15
    for p in sorted(folder.glob("*.png"))[15:]:
        shutil.copy(p, part / p.name)
    grown, report = index_folder(part, tmp_path / "a.index")
    assert (report.added, report.already) == (25, 15)  # the old ones were not embedded again
    rebuilt = index_folder(part, tmp_path / "b.index", **BANK)[0]
    ours = dict(zip(grown.paths, ImageIndex.load(tmp_path / "a.index").vectors()))
    theirs = dict(zip(rebuilt.paths, rebuilt.vectors()))
    assert ours.keys() == theirs.keys()
    assert all(np.allclose(ours[p], theirs[p], atol=1e-5) for p in ours)
    for kwargs in ({"text": "a coat"}, {"image": part / "07.png"}):
        a = query_index(tmp_path / "a.index", k=10, rerank=8, **kwargs)
        b = query_index(tmp_path / "b.index", k=10, rerank=8, **kwargs)
        assert [h.path for h in a.hits] == [h.path for h in b.hits]
        assert np.allclose([h.score for h in a.hits], [h.score for h in b.hits], atol=1e-4)


def test_save_load_round_trip_and_json(built, tmp_path):
    path = built.save(tmp_path / "x.index")
    again = ImageIndex.load(path)
    assert again.paths == built.paths and np.array_equal(again.vectors(), built.vectors())
    assert np.array_equal(again.thumbs, built.thumbs)
    result = again.query("a bag", k=3, rerank=0)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["kind"] == "text" and len(data["hits"]) == 3 and data["hits"][0]["rank"] == 1


def _rewrite_header(path, change):
    from safetensors import safe_open

    with safe_open(str(path), "np") as fh:
        meta = fh.metadata()
    header = json.loads(meta["header"])
    change(header)
    save_file(load_file(str(path)), str(path), metadata={**meta, "header": json.dumps(header)})


def test_an_index_of_another_model_or_version_is_refused(built, tmp_path):
    from diffusio.generative.checkpoint.models import resolve_model_dir

    other = tmp_path / "other-model"  # the shipped model with one weight changed: another model
    shutil.copytree(resolve_model_dir("fashion"), other)
    tensors = load_file(str(other / "model.safetensors"))
    name = sorted(tensors)[0]
    tensors[name] = tensors[name] + 0.01
    save_file(tensors, str(other / "model.safetensors"), metadata={"format": "diffusio-model"})
    path = built.save(tmp_path / "x.index")
    with pytest.raises(UsageError, match="built by model 'fashion', not '.*other-model'"):
        ImageIndex.load(path, model=str(other))
    _rewrite_header(path, lambda h: h.update(model_sha256="0" * 64))
    with pytest.raises(UsageError, match="built by another model"):
        ImageIndex.load(path)
    path = built.save(tmp_path / "y.index")
    _rewrite_header(path, lambda h: h["features"].update(version=99))
    with pytest.raises(UsageError, match="another version of diffusio search"):
        ImageIndex.load(path)
    (tmp_path / "z.index").write_bytes(b"not an index at all")
    with pytest.raises(UsageError, match="cannot read .* as a diffusio search index"):
        ImageIndex.load(tmp_path / "z.index")


def test_query_image_of_another_size_and_mode_is_converted_or_refused(built, collection, tmp_path):
    from PIL import Image

    folder, _ = collection
    grey = np.asarray(Image.open(folder / "33.png"))
    big = Image.fromarray(grey).convert("RGB").resize((84, 84), Image.NEAREST)
    big.save(tmp_path / "big.png")
    result = built.query(image=tmp_path / "big.png", k=1)
    assert Path(result.hits[0].path).stem == "33" and result.hits[0].similarity > 0.95
    assert "converted 84x84 colour to 28x28 grey" in result.notes[0]
    Image.fromarray(np.zeros((20, 100), np.uint8)).save(tmp_path / "wide.png")
    with pytest.raises(UsageError, match="crop it to roughly square"):
        built.query(image=tmp_path / "wide.png")
    (tmp_path / "junk.png").write_bytes(b"junk")
    with pytest.raises(UsageError, match="not a PNG or JPEG"):
        built.query(image=tmp_path / "junk.png")


@pytest.mark.parametrize("k", [0, -3, 2.5, True])
def test_k_must_be_positive(built, k):
    with pytest.raises(UsageError, match="k must be a positive integer"):
        built.query("a bag", k=k)


def test_bad_queries_are_refused(built):
    with pytest.raises(UsageError, match="empty query"):
        built.query("   ")
    with pytest.raises(UsageError, match="not both or neither"):
        built.query()
    for rerank in (-1, 257):
        with pytest.raises(UsageError, match=r"rerank must be in \[0, 256\]"):
            built.query("a bag", rerank=rerank)
    assert len(built.query("a bag", k=1000, rerank=0).hits) == len(built)  # k beyond the collection: all of it


def test_empty_and_unreadable_folders(collection, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError, match="no images in"):
        index_folder(empty, tmp_path / "e.index")
    (empty / "broken.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(UsageError, match="none of the 1 image files"):
        index_folder(empty, tmp_path / "e.index", **BANK)
    assert not (tmp_path / "e.index").exists()  # nothing half-written
    shutil.copy(collection[0] / "00.png", empty / "00.png")
    index, report = index_folder(empty, tmp_path / "e.index", **BANK)
    assert (len(index), report.added, len(report.unreadable)) == (1, 1, 1)
    assert "broken.png" in report.unreadable[0]
    before = (tmp_path / "e.index").read_bytes()
    with pytest.raises(UsageError):  # a failed extension leaves the old file as it was
        index_folder(empty, tmp_path / "e.index", model="no-such-model")
    assert (tmp_path / "e.index").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".e.index")]  # no temporary left


@pytest.mark.parametrize("bank", [0, 10 ** 9, True])
def test_bank_size_is_bounded(bank):
    with pytest.raises(UsageError, match=r"bank must be an integer in \[1, 1000\]"):
        ImageIndex.empty(bank=bank)


def test_a_model_without_classes_queries_through_generated_images(built, collection):
    index = ImageIndex(built.features, bank=(2, 4))  # no class head: what a caption-trained model gets
    index.add(sorted(collection[0].glob("*.png"))[:8])
    assert index.dim == built.features.dim
    result = index.query("a bag", k=3, rerank=0)
    assert len(result.hits) == 3 and "2 images generated from the prompt" in result.notes[0]
