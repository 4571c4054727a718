"""Dataset curation: exact and near duplicates, outliers, and a cleaned copy that training can take.

* **Exact duplicates**: identical pixels (a hash of the bytes).
* **Near duplicates**: a 64-bit perceptual hash (pHash: the signs of the lowest 8x8 DCT
  coefficients of the image scaled to 32x32, against their median) within
  :data:`NEAR_BITS` bits, *confirmed* by a relative pixel difference ``||a - b|| / max(||a||, ||b||)``
  of at most :data:`NEAR_DIFF`.  On 28x28 images the hash alone is too coarse (plain trousers, or
  handwritten ones, share most bits), so pairs must pass both.  On Fashion-MNIST, pairs under 0.1
  are the same garment photographed twice; from 0.1 up they are look-alike plain T-shirts.
* **Outliers**: images far from every other image of their class.  Each image's distance to its
  :data:`K`-th nearest neighbour in a 50-dimensional PCA of the pixels, turned into a robust
  z-score within its class (median and MAD); above :data:`OUTLIER_Z` is an outlier.

Of each duplicate group the first image is kept.  The cleaned copy is written as idx files
(plus ``classes.txt``), which ``diffusio train --data FOLDER`` reads.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> pixels = rng.integers(0, 255, (6, 28, 28), dtype=np.uint8)
>>> pixels[3] = pixels[1]                                    # an exact copy
>>> report = find_problems(pixels, np.zeros(6, int), outliers=False)
>>> report["exact_duplicates"]
[[1, 3]]
"""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
from PIL import Image

from diffusio.errors import UsageError

NEAR_BITS = 6        # pHash bits that may differ in a near-duplicate pair
NEAR_DIFF = 0.1      # ... and their relative pixel difference ||a - b|| / max(||a||, ||b||)
OUTLIER_Z = 4.0      # robust z-score of the k-NN distance above which an image is an outlier
K = 5                # the neighbour whose distance is scored
PCA_DIMS = 50


def phash(pixels: np.ndarray) -> np.ndarray:
    """64-bit perceptual hashes (uint64) of uint8 images ``[N, H, W]``."""
    from scipy.fft import dctn

    small = np.stack([np.asarray(Image.fromarray(p).resize((32, 32), Image.BILINEAR), np.float32) for p in pixels])
    low = dctn(small, axes=(1, 2), norm="ortho")[:, :8, :8].reshape(len(pixels), 64)
    bits = low > np.median(low[:, 1:], axis=1, keepdims=True)  # the DC term would dominate the median
    return np.packbits(bits, axis=1).view(">u8")[:, 0].astype(np.uint64)


def exact_duplicate_groups(pixels: np.ndarray) -> list[list[int]]:
    seen: dict[bytes, list[int]] = {}
    for i, p in enumerate(pixels):
        seen.setdefault(hashlib.sha1(p.tobytes()).digest(), []).append(i)
    return [g for g in seen.values() if len(g) > 1]


def near_duplicate_pairs(pixels: np.ndarray, hashes: np.ndarray, bits: int = NEAR_BITS, diff: float = NEAR_DIFF,
                         chunk: int = 256) -> list[tuple[int, int]]:
    """Pairs (i < j) within ``bits`` hash bits and ``diff`` relative difference, exact copies excluded."""
    pairs = []
    flat = pixels.reshape(len(pixels), -1).astype(np.float32)
    norms = np.linalg.norm(flat, axis=1)
    for start in range(0, len(hashes), chunk):
        block = hashes[start:start + chunk, None] ^ hashes[None, :]
        rows, cols = np.nonzero(np.bitwise_count(block) <= bits)
        keep = cols > rows + start
        for i, j in zip(rows[keep] + start, cols[keep]):
            rel = np.linalg.norm(flat[i] - flat[j]) / max(norms[i], norms[j], 1e-6)
            if 0 < rel <= diff:
                pairs.append((int(i), int(j)))
    return pairs


def knn_outliers(pixels: np.ndarray, labels: np.ndarray, k: int = K, z: float = OUTLIER_Z,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Outlier indices and every image's robust z-score (k-NN distance in PCA space, within class)."""
    x = pixels.reshape(len(pixels), -1).astype(np.float32) / 255.0
    rng = np.random.default_rng(seed)
    fit = x[rng.choice(len(x), min(len(x), 10000), replace=False)]
    mean = fit.mean(0)
    _, _, vt = np.linalg.svd(fit - mean, full_matrices=False)
    proj = (x - mean) @ vt[: min(PCA_DIMS, len(vt))].T
    scores = np.zeros(len(x))
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) <= k + 1:
            continue  # too few images to call any of them unusual
        p = proj[idx]
        sq = (p ** 2).sum(1)
        kth = np.empty(len(idx))
        for s in range(0, len(idx), 1024):
            d2 = sq[s:s + 1024, None] + sq[None] - 2 * p[s:s + 1024] @ p.T
            kth[s:s + 1024] = np.sqrt(np.maximum(np.partition(d2, k, axis=1)[:, k], 0))  # column 0 is itself
        med = np.median(kth)
        mad = np.median(np.abs(kth - med)) * 1.4826
        scores[idx] = (kth - med) / max(mad, 1e-12)
    return np.flatnonzero(scores > z), scores


def find_problems(pixels: np.ndarray, labels: np.ndarray | None, *, near_bits: int = NEAR_BITS,
                  near_diff: float = NEAR_DIFF, outlier_z: float = OUTLIER_Z, outliers: bool = True) -> dict:
    """Duplicates and outliers of uint8 images ``[N, H, W]`` (grey) or ``[N, H, W, 3]``; a JSON-ready dict."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or pixels.ndim not in (3, 4) or len(pixels) == 0:
        raise UsageError(f"curation takes uint8 images [N, H, W(, 3)], got {pixels.dtype} {pixels.shape}")
    grey = pixels if pixels.ndim == 3 else pixels.mean(-1).astype(np.uint8)
    labels = np.zeros(len(pixels), int) if labels is None else np.asarray(labels)
    exact = exact_duplicate_groups(pixels)
    near = near_duplicate_pairs(grey, phash(grey), near_bits, near_diff)
    out_idx, scores = knn_outliers(grey, labels, z=outlier_z) if outliers else (np.array([], int), None)
    drop = {i for g in exact for i in g[1:]}
    drop |= _later_members(near, len(pixels))
    drop |= set(out_idx.tolist())
    keep = np.ones(len(pixels), bool)
    keep[sorted(drop)] = False
    report = {"images": int(len(pixels)), "kept": int(keep.sum()), "removed": int((~keep).sum()),
              "thresholds": {"near_bits": near_bits, "near_diff": near_diff, "outlier_z": outlier_z if outliers else None,
                             "k": K, "pca_dims": PCA_DIMS},
              "exact_duplicates": exact, "near_duplicates": [list(p) for p in near],
              "outliers": [{"index": int(i), "z": round(float(scores[i]), 2)} for i in out_idx]}
    report["_keep"] = keep
    return report


def _later_members(pairs: list[tuple[int, int]], n: int) -> set[int]:
    """Group near-duplicate pairs (union-find) and return every member but the first of each group."""
    parent = list(range(n))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pairs:
        a, b = root(i), root(j)
        if a != b:
            parent[max(a, b)] = min(a, b)
    members = {i for p in pairs for i in p}
    return {i for i in members if root(i) != i}


def write_idx(path: Path, array: np.ndarray) -> None:
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.tobytes())


def write_dataset(folder: str | Path, splits: dict[str, tuple[np.ndarray, np.ndarray | None]],
                  class_names: list[str] | None) -> Path:
    """idx files (``train-*``, ``t10k-*``) plus ``classes.txt``: what ``load_dataset(folder)`` reads."""
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise UsageError(f"{folder} exists and is not empty; choose a new -o (nothing is overwritten)")
    folder.mkdir(parents=True, exist_ok=True)
    for split, (pixels, labels) in splits.items():
        prefix = "train" if split == "train" else "t10k"
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", pixels)
        if labels is not None:
            write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    if class_names:
        (folder / "classes.txt").write_text("\n".join(class_names) + "\n", encoding="utf-8")
    return folder


def save_problem_picture(pixels: np.ndarray, report: dict, path: str | Path, per_row: int = 8) -> None:
    """Rows of near-duplicate pairs (side by side) and outliers, for a quick look."""
    from diffusio.generative.data.images import labelled_rows, save_images

    rows, names = [], []
    pairs = report["near_duplicates"][:per_row // 2 * 3]
    for r in range(0, len(pairs), per_row // 2):
        rows.append(np.stack([pixels[i] for p in pairs[r:r + per_row // 2] for i in p]))
        names.append("near duplicates" if r == 0 else "")
    worst = sorted(report["outliers"], key=lambda o: -o["z"])[: per_row * 2]
    for r in range(0, len(worst), per_row):
        rows.append(np.stack([pixels[o["index"]] for o in worst[r:r + per_row]]))
        names.append("outliers" if r == 0 else "")
    if not rows:
        raise UsageError("nothing was found, so there is no picture to draw")
    width = max(len(r) for r in rows)
    rows = [np.concatenate([r, np.full((width - len(r),) + r.shape[1:], 255, np.uint8)]) for r in rows]
    save_images(labelled_rows(rows, names)[None], path)


def curate_dataset(dataset: str, out: str | Path, *, near_bits: int = NEAR_BITS, near_diff: float = NEAR_DIFF,
                   outlier_z: float = OUTLIER_Z, keep_outliers: bool = False,
                   picture: str | Path | None = None) -> dict:
    """Find the problems in ``dataset`` and write a cleaned copy to the new folder ``out``.

    The test split, where there is one, is copied unchanged so the cleaned copy evaluates the same.
    Returns the report (also written as ``out/report.json``) with ``picture`` set to the path of
    the picture of the problems, or None when there was nothing to draw.  Nothing is overwritten:
    ``out`` must be new or an empty folder.

    >>> report = curate_dataset("digits", "/tmp/digits-clean")          # doctest: +SKIP
    >>> report["kept"] <= report["images"]                             # doctest: +SKIP
    True
    """
    from diffusio._io import atomic_save_json, check_output
    from diffusio.generative.data.datasets import load_dataset, to_uint8

    if not 0 <= near_bits <= 64:
        raise UsageError(f"near_bits must be in 0..64, got {near_bits}")
    if not 0 <= near_diff <= 2:
        raise UsageError(f"near_diff must be in [0, 2], got {near_diff}")
    if not 0 < outlier_z < float("inf"):  # inf flagged nothing and said nothing (found by the probe)
        raise UsageError(f"outlier_z must be a finite number > 0 (use keep_outliers to keep them), got {outlier_z}")
    if picture:
        if not str(picture).lower().endswith(".png"):
            raise UsageError(f"picture must end in .png, got {picture}")
        check_output(picture)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} exists and is not an empty folder; choose a new output folder (nothing is overwritten)")
    ds = load_dataset(dataset)
    if ds.images.shape[1] != 1:
        raise UsageError("curate writes idx files, which hold grey images; this dataset is in colour")
    pixels = to_uint8(ds.images)
    report = find_problems(pixels, ds.labels, near_bits=near_bits, near_diff=near_diff, outlier_z=outlier_z,
                           outliers=not keep_outliers)
    keep = report.pop("_keep")
    splits = {"train": (pixels[keep], None if ds.labels is None else ds.labels[keep])}
    try:
        test = load_dataset(dataset, "test")
        splits["test"] = (to_uint8(test.images), test.labels)
    except UsageError:
        pass
    write_dataset(out, splits, ds.class_names)
    report["dataset"] = dataset
    atomic_save_json(out / "report.json", report)
    drawn = picture and (report["near_duplicates"] or report["outliers"])
    if drawn:
        save_problem_picture(pixels, report, picture)
    return {**report, "picture": str(picture) if drawn else None}
