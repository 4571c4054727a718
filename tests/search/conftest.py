"""Forty real Fashion-MNIST test images (four per class) as PNG files, and one index over them."""

import numpy as np
import pytest

from diffusio.generative.data.datasets import load_dataset, to_uint8
from diffusio.generative.data.images import png_bytes

BANK = {"bank": 4, "bank_steps": 8}  # a small prototype bank: the tests stay fast


@pytest.fixture(scope="session")
def search_cache(tmp_path_factory):
    """One prototype cache for the whole run (outside the user's ~/.cache)."""
    folder = tmp_path_factory.mktemp("search-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("DIFFUSIO_CACHE", str(folder))
    yield folder
    mp.undo()


@pytest.fixture(scope="session")
def collection(tmp_path_factory, search_cache):
    """(folder, {file stem: class name}): images 00-39, four of each class."""
    test = load_dataset("fashion-mnist", "test")
    picks = np.concatenate([np.flatnonzero(test.labels == c)[:4] for c in range(10)])
    folder = tmp_path_factory.mktemp("photos")
    classes = {}
    for i, j in enumerate(picks):
        (folder / f"{i:02d}.png").write_bytes(png_bytes(to_uint8(test.images[j:j + 1])[0]))
        classes[f"{i:02d}"] = test.class_names[test.labels[j]]
    return folder, classes


@pytest.fixture(scope="session")
def built(collection):
    from diffusio.search import ImageIndex

    return ImageIndex.build(collection[0], **BANK)
