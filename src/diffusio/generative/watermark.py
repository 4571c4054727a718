"""An invisible, keyed watermark carried by the starting noise, and its detector.

Images of 28x28 pixels are too small for pixel-domain watermarks (a blind correlator drowns in
the image itself, and `invisible-watermark` refuses anything under 256x256).  So the mark goes
where a diffusion model has room for it: the signs of the starting noise.  A key (any string)
fixes a pattern ``s`` of +-1, one per pixel; a marked sample starts from ``|z| * s`` instead of
``z``.  Each coordinate is still a standard normal in magnitude with a sign fixed by the key.  The
images look like any others one by one, but every marked image shares the same sign pattern, and
that costs sample diversity: FD rises by about 30% (docs/trust.md).  So marking is opt-in
(``watermark=True``, ``--watermark``) or switched on for a whole deployment by setting
$DIFFUSIO_WATERMARK_KEY.

To detect, the image is inverted back to its starting noise with the model's probability-flow ODE
(:func:`diffusio.generative.editing.invert`, unconditional, since the prompt is unknown) and
correlated with the key:

    score = sum_i zhat_i s_i / ||zhat||

For an image that does not carry this key (a real photo, another key, no watermark), ``s`` is
independent of ``zhat`` and the score is a sum of random-sign terms of total variance 1: about
N(0, 1), whatever the image.  Marked images score far above (the guided ODE and the inversion
differ, so not every sign comes back, but most do).

Only the starting noise is marked.  Deterministic samplers (dpmpp-2m, the default; euler, heun,
unipc, ddim, adaptive) and the one-step distilled student carry it to the image.  Samplers that
draw fresh noise on the way (ddpm, the student's 2- and 4-step consistency sampling) replace the
fine structure it lives in, and marking their fresh noise as well made the images visibly worse,
so their images carry no detectable mark: ``generate`` says so when it happens.  Detection reports the one-sided p-value of
the score under that null, and calls the image marked when the score exceeds
:data:`THRESHOLD` (p = 3e-5).  Ideas from Tree-Ring (Wen et al., 2023) and Gaussian Shading
(Yang et al., 2024): keys in the initial noise, read back by inversion.

>>> import torch
>>> pattern = key_pattern("my key", (1, 8, 8))
>>> marked = mark_noise(torch.randn(2, 1, 8, 8), pattern)
>>> bool(((marked.sign() == pattern).all()))
True
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import norm

from diffusio.errors import UsageError

DEFAULT_KEY = "diffusio"  # public: marks "made with diffusio"; set your own key to make it yours
KEY_ENV = "DIFFUSIO_WATERMARK_KEY"
THRESHOLD = 4.0           # score above which an image is called marked (one-sided p = 3.2e-5)
INVERSION_STEPS = 10      # enough to read the signs back (more steps barely change the score)
INVERSION_START = 0.2     # invert from this noise level: JPEG artefacts and added noise drown in it


def survives(sampler: str, steps: int) -> bool:
    """Does a mark in the starting noise reach the image with this sampler?  (See the module notes.)"""
    return not (sampler == "ddpm" or (sampler == "consistency" and steps > 1))


def default_key() -> str:
    """The key from $DIFFUSIO_WATERMARK_KEY, or the public default."""
    return os.environ.get(KEY_ENV) or DEFAULT_KEY


def key_pattern(key: str, shape: tuple[int, ...]) -> torch.Tensor:
    """The +-1 pattern of a key for images of ``shape`` (C, H, W): a seeded draw, so any string works."""
    if not isinstance(key, str) or not key:
        raise UsageError("a watermark key must be a non-empty string")
    seed = int.from_bytes(hashlib.sha256(f"diffusio-watermark\n{key}".encode()).digest()[:8], "little")
    gen = torch.Generator().manual_seed(seed & (2**63 - 1))
    return (torch.randint(0, 2, tuple(shape), generator=gen) * 2 - 1).float()


def resolve_key(watermark: bool | str | None) -> str | None:
    """``True`` -> the default key, a string -> that key, ``False`` -> no watermark, ``None`` (the
    default) -> $DIFFUSIO_WATERMARK_KEY if it is set, else no watermark."""
    if watermark is None:
        return os.environ.get(KEY_ENV) or None
    if watermark is True:
        return default_key()
    if watermark is False:
        return None
    if isinstance(watermark, str) and watermark:
        return watermark
    raise UsageError(f"watermark must be True, False or a key string, got {watermark!r}")


def mark_noise(noise: torch.Tensor, pattern: torch.Tensor) -> torch.Tensor:
    """Starting noise with the key's signs: same magnitudes, signs from the pattern."""
    return noise.abs() * pattern


@dataclass
class Detection:
    score: np.ndarray      # per image; about N(0, 1) without the mark
    p_value: np.ndarray    # one-sided, under "this image does not carry the key"
    marked: np.ndarray     # score > THRESHOLD

    def rows(self) -> list[dict]:
        """One dict per image; ``confidence`` = 1 - p_value, the confidence that the key is there."""
        return [{"marked": bool(m), "score": round(float(s), 2), "p_value": float(p), "confidence": 1.0 - float(p)}
                for s, p, m in zip(self.score, self.p_value, self.marked)]


def scores(latents: torch.Tensor, pattern: torch.Tensor) -> np.ndarray:
    """Normalised correlation of inverted latents with a key pattern (N(0, 1) for unrelated images)."""
    flat = latents.flatten(1).double()
    return ((flat * pattern.flatten().double()).sum(1) / flat.norm(dim=1).clamp_min(1e-12)).numpy()


def detect(gen, images, key: str | None = None, steps: int = INVERSION_STEPS) -> Detection:
    """Is each image marked with ``key``?  ``images``: float [N, C, H, W] in [-1, 1] of the model's size.

    ``gen`` must be the model that generated the images (or its teacher, for a distilled student).
    """
    from diffusio.generative.editing import invert

    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    if x.ndim != 4 or tuple(x.shape[1:]) != gen.model.image_shape:
        raise UsageError(f"images of shape {tuple(x.shape[1:])} cannot be checked with this model "
                         f"({gen.model.image_shape}); use the model that made them")
    pattern = key_pattern(key or default_key(), gen.model.image_shape)
    z = invert(gen, x, steps=steps, iters=0, start=INVERSION_START)
    s = scores(z, pattern)
    p = norm.sf(s)  # one-sided, under the N(0, 1) null
    return Detection(s, p, s > THRESHOLD)
