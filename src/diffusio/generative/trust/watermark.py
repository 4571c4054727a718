"""An invisible, keyed watermark carried by the starting noise, and its detector.

Images of 28x28 pixels are too small for pixel-domain watermarks (a blind correlator drowns in
the image itself, and `invisible-watermark` refuses anything under 256x256).  So the mark goes
where a diffusion model has room for it: the signs of the starting noise.  A key (any string)
fixes a bank of :data:`PATTERNS` random +-1 patterns, one sign per pixel; a marked sample starts
from ``|z| * s_k`` with ``k`` drawn at random for each image.  Magnitudes are untouched, and
because each image gets its own pattern the marked noise has mean 0 and identity covariance over
a batch, like plain noise.  (A first version gave every image the same pattern: the shared sign
pattern shifts the noise's mean by 0.8 per pixel and cost 30% FD.  Drawing from a bank removes
that shift; docs/trust.md has the measurements.)  Every generated image is marked unless the
caller opts out (``watermark=False``, ``--no-watermark``).

To detect, the image is inverted back to its starting noise with the model's probability-flow ODE
(:func:`diffusio.generative.editing.edits.invert`, unconditional, since the prompt is unknown) and
correlated with every pattern of the key; the score is the best match:

    score = max_k sum_i w_i zhat_i s_ki / ||w zhat||

The weights ``w`` (:func:`pixel_weights`) count pixels clamped at black or white less: clamping
erases most of what the noise did there (the inversion gets 54% of signs right on black pixels
and 75% on mid-tones), so they mostly add noise to the correlation.

For an image that does not carry this key (a real photo, another key, no watermark), each
pattern is independent of ``zhat`` and of ``w`` (which depend on the image only), and its
correlation is a sum of random-sign terms of total variance 1, about N(0, 1) whatever the image;
the patterns are independent, so the p-value of the best of :data:`PATTERNS` is
``1 - (1 - P(N(0, 1) > score)) ** PATTERNS``.  Marked images score far above (the guided
ODE and the inversion differ, so not every sign comes back, but most do).  The image is called
marked when that p-value is below :data:`FALSE_ALARM`, i.e. score > :data:`THRESHOLD`.

Only the starting noise is marked.  Deterministic samplers (dpmpp-2m, the default; euler, heun,
unipc, ddim, adaptive) and the one-step distilled student carry it to the image.  Samplers that
draw fresh noise on the way (ddpm, the student's 2- and 4-step consistency sampling) replace the
fine structure it lives in, so their images carry no detectable mark: ``generate`` says so when
it happens.  Ideas from Tree-Ring (Wen et al., 2023) and Gaussian Shading (Yang et al., 2024):
keys in the initial noise, read back by inversion.

>>> import torch
>>> bank = key_patterns("my key", (1, 8, 8))
>>> marked = mark_noise(torch.randn(2, 1, 8, 8), bank, torch.Generator().manual_seed(0))
>>> [bool((m.sign() == bank).flatten(1).all(1).any()) for m in marked]  # each has a pattern of the key
[True, True]
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from scipy.special import ndtr, ndtri  # the normal tail as scipy.stats.norm computes it; 0.75 s less to import

from diffusio.errors import UsageError

DEFAULT_KEY = "diffusio"  # public: marks "made with diffusio"; set your own key to make it yours
KEY_ENV = "DIFFUSIO_WATERMARK_KEY"
PATTERNS = 4096           # patterns per key, one drawn per image (1,024 and 4,096 cost the same FD: docs/trust.md)
FALSE_ALARM = 5e-3        # chance that an unmarked image is called marked (issue 8 allows 1e-2; 1e-3 loses ~1% of marks)
THRESHOLD = float(-ndtri(-np.expm1(np.log1p(-FALSE_ALARM) / PATTERNS)))  # best-match score above which an image is marked (4.71)
INVERSION_STEPS = 10      # enough to read the signs back (more steps barely change the score)
INVERSION_START = 0.3     # invert from this noise level: JPEG artefacts and added noise drown in it (0.2: 0.5% fewer found after noise)
DARK, BRIGHT = 10, 230    # grey levels (0-255) at or beyond which a pixel counts as clamped ...
DARK_WEIGHT, BRIGHT_WEIGHT = 0.4, 0.7  # ... and its weight in the score (fitted on 500 marked images, checked on 500 others)


def survives(sampler: str, steps: int) -> bool:
    """Does a mark in the starting noise reach the image with this sampler?  (See the module notes.)"""
    return not (sampler == "ddpm" or (sampler == "consistency" and steps > 1))


def default_key() -> str:
    """The key from $DIFFUSIO_WATERMARK_KEY, or the public default."""
    return os.environ.get(KEY_ENV) or DEFAULT_KEY


def key_patterns(key: str, shape: tuple[int, ...]) -> torch.Tensor:
    """The key's bank of +-1 patterns for images of ``shape`` (C, H, W): [PATTERNS, C, H, W].

    A seeded draw, so any string works; cached, so do not modify the result.
    """
    if not isinstance(key, str) or not key:
        raise UsageError("a watermark key must be a non-empty string")
    return _bank(key, tuple(int(d) for d in shape))


@lru_cache(maxsize=4)
def _bank(key: str, shape: tuple[int, ...]) -> torch.Tensor:
    seed = int.from_bytes(hashlib.sha256(f"diffusio-watermark\n{key}".encode()).digest()[:8], "little")
    gen = torch.Generator().manual_seed(seed & (2**63 - 1))
    return (torch.randint(0, 2, (PATTERNS, *shape), generator=gen, dtype=torch.int8) * 2 - 1)  # int8: 4x less memory


def resolve_key(watermark: bool | str | None) -> str | None:
    """``None`` (the default) or ``True`` -> the default key ($DIFFUSIO_WATERMARK_KEY, else the
    public one), a string -> that key, ``False`` -> no watermark."""
    if watermark is None or watermark is True:
        return default_key()
    if watermark is False:
        return None
    if isinstance(watermark, str) and watermark:
        return watermark
    raise UsageError(f"watermark must be True, False or a key string, got {watermark!r}")


def mark_noise(noise: torch.Tensor, patterns: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Starting noise with a key's signs: same magnitudes, signs from one pattern of the bank per
    image, drawn with ``generator`` (so a seed fixes which)."""
    pick = torch.randint(0, len(patterns), (len(noise),), generator=generator)
    return noise.abs() * patterns[pick].to(noise.dtype)


def marking(watermark: bool | str | None, shape: tuple[int, ...]):
    """The start-noise hook of :func:`core.sampling.sample` that marks with the key ``watermark``
    names (see :func:`resolve_key`), or None for plain noise.

    >>> hook = marking("my key", (1, 8, 8))
    >>> hook(torch.randn(2, 1, 8, 8), torch.Generator().manual_seed(0)).shape
    torch.Size([2, 1, 8, 8])
    >>> marking(False, (1, 8, 8)) is None
    True
    """
    key = resolve_key(watermark)
    if key is None:
        return None
    patterns = key_patterns(key, shape)
    return lambda noise, generator: mark_noise(noise, patterns, generator)


@dataclass
class Detection:
    score: np.ndarray      # per image: best match over the key's patterns
    p_value: np.ndarray    # one-sided, under "this image does not carry the key"
    marked: np.ndarray     # score > THRESHOLD

    def rows(self) -> list[dict]:
        """One dict per image; ``confidence`` = 1 - p_value, the confidence that the key is there."""
        return [{"marked": bool(m), "score": round(float(s), 2), "p_value": float(p), "confidence": 1.0 - float(p)}
                for s, p, m in zip(self.score, self.p_value, self.marked)]


def pixel_weights(images: torch.Tensor) -> torch.Tensor:
    """Weight of each pixel in the score: :data:`DARK_WEIGHT` for near-black pixels,
    :data:`BRIGHT_WEIGHT` for near-white ones, 1 elsewhere (images in [-1, 1])."""
    grey = (images + 1) * 127.5
    return torch.where(grey < DARK, DARK_WEIGHT, torch.where(grey >= BRIGHT, BRIGHT_WEIGHT, 1.0)).to(images.dtype)


def scores(latents: torch.Tensor, patterns: torch.Tensor, weights: torch.Tensor | None = None) -> np.ndarray:
    """Best normalised correlation of each inverted latent with the patterns of a bank (one
    pattern [C, H, W] or a bank [K, C, H, W]), each pixel counted with ``weights`` (default 1);
    each correlation is N(0, 1) for unrelated images."""
    flat = (latents if weights is None else latents * weights).flatten(1).double()
    bank = patterns.reshape(-1, flat.shape[1]).to(torch.float64)
    return ((flat @ bank.T).amax(1) / flat.norm(dim=1).clamp_min(1e-12)).numpy()


def p_values(score: np.ndarray, patterns: int = PATTERNS) -> np.ndarray:
    """One-sided p-values of best-of-``patterns`` scores under "no mark":
    P(max of ``patterns`` independent N(0, 1) > score)."""
    return -np.expm1(patterns * np.log1p(-ndtr(-score)))  # ndtr(-x): the normal tail above x


def detect(gen, images, key: str | None = None, steps: int = INVERSION_STEPS) -> Detection:
    """Is each image marked with ``key``?  ``images``: float [N, C, H, W] in [-1, 1] of the model's size.

    ``gen`` must be the model that generated the images (or its teacher, for a distilled student).
    """
    from diffusio.generative.editing.edits import invert

    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    if x.ndim != 4 or tuple(x.shape[1:]) != gen.model.image_shape:
        raise UsageError(f"images of shape {tuple(x.shape[1:])} cannot be checked with this model "
                         f"({gen.model.image_shape}); use the model that made them")
    bank = key_patterns(key or default_key(), gen.model.image_shape)
    z = invert(gen, x, steps=steps, iters=0, start=INVERSION_START)
    s = scores(z, bank, pixel_weights(x))
    return Detection(s, p_values(s, len(bank)), s > THRESHOLD)


def detect_files(paths: list[str], model: str = "fashion", key: str | None = None) -> list[dict]:
    """:func:`detect` on image files (PNG/JPEG, grids written by ``diffusio generate``, ``.npy``).

    ``model`` is the model that made them; a distilled student's images are read back with its
    teacher's ODE, which this looks up.  One dict per image (``image``, ``score``, ``p_value``,
    ``marked``, ``confidence``), plus one per file of 256x256 or more with the invisible-watermark
    ``stamp`` reading.

    >>> rows = detect_files(["bags.png"])                       # doctest: +SKIP
    """
    from diffusio.generative.data.images import read_model_images
    from diffusio.generative.pipeline import Generator

    gen = Generator.load(model)
    teacher = gen.model.config.get("distillation", {}).get("teacher")
    if teacher:  # a student's outputs are read back with its teacher's ODE
        gen = Generator.load(teacher)
    results = []
    for path in paths:
        rows = detect(gen, read_model_images(path, gen.model.image_shape), key=key).rows()
        results += [{"image": path if len(rows) == 1 else f"{path}[{i}]", **row} for i, row in enumerate(rows)]
        reading = _read_large_stamp(path, key)
        if reading is not None:
            results.append({"image": path, "stamp": {"marked": reading.marked, "matched_bits": reading.matched,
                                                      "p_value": reading.p_value}})
    return results


def _read_large_stamp(path: str, key: str | None):
    """The invisible-watermark reading of a saved image of 256x256 or more, else None."""
    from diffusio.generative.data.images import decode_image
    from diffusio.generative.trust import stamp

    if str(path).lower().endswith(".npy") or not stamp.available():
        return None
    pixels = decode_image(path)
    if pixels.dtype != np.uint8 or not stamp.large_enough(pixels):
        return None
    return stamp.read_stamp(pixels, key or default_key())
