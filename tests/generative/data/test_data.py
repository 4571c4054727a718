"""Loaders on real data, and clear errors on bad input."""

import gzip

import numpy as np
import pytest
from PIL import Image

from diffusio.errors import UsageError
from diffusio.generative.data.datasets import FASHION_CLASSES, load_dataset, to_uint8


def test_fashion_mnist():
    train, test = load_dataset("fashion-mnist"), load_dataset("fashion-mnist", "test")
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.images.dtype == np.float32 and train.images.min() == -1 and train.images.max() == 1
    assert np.bincount(test.labels).tolist() == [1000] * 10
    assert train.class_names == FASHION_CLASSES


def test_mnist5k_and_digits():
    m = load_dataset("mnist5k")
    assert m.images.shape == (4500, 1, 28, 28) and len(load_dataset("mnist5k", "test")) == 500
    d = load_dataset("digits")
    assert d.images.shape[1:] == (1, 8, 8) and set(d.labels) == set(range(10))


def test_uint8_round_trip():
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16)
    assert np.array_equal(to_uint8(pixels / 127.5 - 1.0), pixels[:, 0])


def test_idx_directory(tmp_path):
    src = load_dataset("fashion-mnist", "test")
    pixels = to_uint8(src.images[:50])
    header = bytes([0, 0, 8, 3]) + (50).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as fh:
        fh.write(header + pixels.tobytes())
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1]) + (50).to_bytes(4, "big")
                                                      + src.labels[:50].astype(np.uint8).tobytes())
    ds = load_dataset(str(tmp_path))
    assert np.array_equal(ds.images, src.images[:50]) and np.array_equal(ds.labels, src.labels[:50])
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1]) + (50).to_bytes(4, "big") + b"\x01")
    with pytest.raises(UsageError, match="truncated"):
        load_dataset(str(tmp_path))


def test_image_folder_with_classes_and_captions(tmp_path):
    for cls in ("cats", "dogs"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.fromarray(np.full((12, 12), 40 * i, np.uint8)).save(tmp_path / cls / f"{i}.png")
    rows = ["file,caption"] + [f"{c}/{i}.png,a {c[:-1]} number {i}" for c in ("cats", "dogs") for i in range(3)]
    (tmp_path / "captions.csv").write_text("\n".join(rows))
    ds = load_dataset(str(tmp_path))
    assert ds.images.shape == (6, 1, 12, 12)
    assert ds.class_names == ["cats", "dogs"] and ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert ds.captions[4] == "a dog number 1"


def test_image_folder_errors(tmp_path):
    with pytest.raises(UsageError, match="no PNG or JPEG"):
        load_dataset(str(tmp_path))
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(tmp_path / "b.png")
    with pytest.raises(UsageError, match="mixed sizes"):
        load_dataset(str(tmp_path))
    (tmp_path / "b.png").write_bytes(b"not an image")
    with pytest.raises(UsageError, match="cannot read image"):
        load_dataset(str(tmp_path))


def test_unknown_dataset():
    with pytest.raises(UsageError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet")
