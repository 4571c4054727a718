"""A second watermark for saved images of 256x256 pixels or more, with `invisible-watermark`.

The mark in the starting noise (:mod:`watermark`) lives in each 28x28 image.  A large saved file
(an upscaled grid, ``generate --scale 3``) can also carry the widely used `invisible-watermark`
stamp (the dwtDct method, as in Stable Diffusion's reference scripts): 32 bits derived from the
key, hidden in the DCT of the Haar approximation of the luminance, readable with the package's
own decoder::

    WatermarkDecoder("bits", 32).decode(bgr, "dwtDct", scales=[24, 0, 0])

The package refuses images under 256x256 pixels, which is why this is the second mark and not
the first.  Its encoder (0.2.0) also swaps the horizontal and vertical detail bands when it
rebuilds the image and wraps uint8 values around, which ruins sharp upscaled grids (20 dB PSNR);
so :func:`stamp` runs the package's embedding step inside a correct Haar round trip (44 dB
PSNR or more on our grids).  Reading counts the key's bits that come back: 28 or more of 32 has
a one-sided p-value of 1e-5 for an unstamped image.

>>> import numpy as np
>>> grid = np.random.default_rng(0).integers(0, 256, (300, 300), dtype=np.uint8)
>>> read_stamp(stamp(grid, "my key"), "my key").marked, read_stamp(grid, "my key").marked
(True, False)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom

from diffusio.errors import UsageError

BITS = 32
SCALE = 24               # embedding strength: >= 30 of 32 bits back on our grids, also after JPEG q90
MIN_AREA = 256 * 256     # invisible-watermark's own lower limit
MIN_MATCHED = 28         # bits of 32 that must come back (p = 1e-5 by chance)
INSTALL = "pip install --no-deps invisible-watermark==0.2.0 opencv-python-headless PyWavelets"


def large_enough(image: np.ndarray) -> bool:
    """Is a saved image (H, W) or (H, W, 3) big enough for invisible-watermark?"""
    return image.shape[0] * image.shape[1] >= MIN_AREA


def available() -> bool:
    try:
        import imwatermark  # noqa: F401
        import pywt  # noqa: F401
    except ImportError:
        return False
    return True


def key_bits(key: str) -> np.ndarray:
    """The 32 bits a key stamps: the start of SHA-256 of the key."""
    digest = hashlib.sha256(f"diffusio-stamp\n{key}".encode()).digest()
    return np.unpackbits(np.frombuffer(digest[: BITS // 8], np.uint8)).astype(bool)


def _luma(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image.astype(np.float64)
    return image[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])  # what cv2's YUV uses


def stamp(image: np.ndarray, key: str) -> np.ndarray:
    """``image`` (uint8, H x W or H x W x 3, at least 256x256 in area) with the key's 32 bits."""
    if not available():
        raise UsageError(f"invisible-watermark is not installed: {INSTALL}")
    import pywt
    from imwatermark.maxDct import EmbedMaxDct

    if not large_enough(image):
        raise UsageError(f"invisible-watermark needs at least 256x256 pixels, got {image.shape[1]}x{image.shape[0]}")
    y = _luma(image)
    h, w = y.shape[0] // 4 * 4, y.shape[1] // 4 * 4
    approx, details = pywt.dwt2(y[:h, :w], "haar")
    EmbedMaxDct(key_bits(key).astype(int).tolist(), wmLen=BITS, scales=[SCALE, 0, 0]).encode_frame(approx, SCALE)
    delta = np.zeros_like(y)
    delta[:h, :w] = pywt.idwt2((approx, details), "haar") - y[:h, :w]
    if image.ndim == 3:
        delta = delta[..., None] * (np.arange(image.shape[2]) < 3)  # the same luminance shift on R, G, B
    return np.clip(np.rint(image + delta), 0, 255).astype(np.uint8)


@dataclass
class StampReading:
    matched: int      # of BITS
    p_value: float    # one-sided, under "no stamp of this key"
    marked: bool


def read_stamp(image: np.ndarray, key: str) -> StampReading:
    """How many of the key's bits does invisible-watermark's decoder read back from ``image``?"""
    if not available():
        raise UsageError(f"invisible-watermark is not installed: {INSTALL}")
    from imwatermark import WatermarkDecoder

    grey = np.rint(_luma(image)).astype(np.uint8)
    bgr = np.repeat(grey[..., None], 3, axis=2)
    bits = np.asarray(WatermarkDecoder("bits", BITS).decode(bgr, "dwtDct", scales=[SCALE, 0, 0]), dtype=bool)
    matched = int((bits == key_bits(key)).sum())
    return StampReading(matched, float(binom.sf(matched - 1, BITS, 0.5)), matched >= MIN_MATCHED)


def saving_finish(key: str | None, warn=None):
    """The policy for saved pictures of marked images: a ``finish`` for ``save_images`` that adds
    the invisible-watermark stamp with ``key`` to pictures of 256x256 pixels or more (None when
    not marking).  ``warn(message)`` is told once if the stamp package is missing."""
    if key is None:
        return None
    warned = []

    def finish(image):
        if not large_enough(image):
            return image
        if not available():
            if warn and not warned:
                warn(f"the saved grid is large enough for an invisible-watermark stamp, but the package is "
                     f"missing ({INSTALL}); the images still carry diffusio's own mark")
                warned.append(True)
            return image
        return stamp(image, key)
    return finish
