"""Image files in and out of a search index: a folder's images, a query image, conversion.

Every image is converted to what the model works on (grey or colour, its height and width) the
same way, whether it is indexed or asked about: colour to grey (or grey to colour) by PIL's
``convert``, other sizes resized with antialiasing.  An image more than twice as wide as high
(or the reverse) is refused: squeezing it into a square would describe another shape.

>>> import numpy as np
>>> pixels, note = to_model_pixels(np.full((56, 56, 3), 200, np.uint8), (1, 28, 28), "a.png")
>>> pixels.shape, note
((28, 28), 'a.png: converted 56x56 colour to 28x28 grey')
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from diffusio.errors import UsageError

SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
MAX_ASPECT = 2.0


def image_files(folder: str | Path) -> list[Path]:
    """The image files under ``folder`` (recursively, by suffix), sorted; a clear error if none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder; give a folder of images (PNG, JPEG, ...)")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())
    if not files:
        raise UsageError(f"no images in {folder} (looked for {', '.join(SUFFIXES)}); give a folder that holds some")
    return files


def to_model_pixels(pixels: np.ndarray, shape: tuple[int, int, int], what: str) -> tuple[np.ndarray, str | None]:
    """uint8 pixels ``[H, W]`` or ``[H, W, 3|4]`` -> the model's mode and size, and a note of what was
    converted (None if nothing)."""
    c, h, w = shape
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] not in (1, 3, 4)):
        raise UsageError(f"{what}: expected uint8 pixels [H, W] or [H, W, 3], got {pixels.dtype} {pixels.shape}")
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    H, W = pixels.shape[:2]
    if min(H, W) < 1 or max(H / W, W / H) > MAX_ASPECT:
        raise UsageError(f"{what} is {W}x{H} pixels; the model sees {w}x{h} images and squeezing this one would "
                         "change its shape: crop it to roughly square first")
    was = "grey" if pixels.ndim == 2 else "colour"
    image = Image.fromarray(pixels)
    want = "L" if c == 1 else "RGB"
    if image.mode != want:
        image = image.convert(want)
    if (H, W) != (h, w):
        image = image.resize((w, h), Image.BILINEAR)
    now = "grey" if c == 1 else "colour"
    note = None if (H, W, was) == (h, w, now) else f"{what}: converted {W}x{H} {was} to {w}x{h} {now}"
    return np.asarray(image), note


def read_image(path: str | Path | bytes, shape: tuple[int, int, int], what: str | None = None) -> tuple[np.ndarray, str | None]:
    """An image file (or its bytes) as the model's uint8 pixels, plus a conversion note."""
    from diffusio.generative.data.images import decode_image

    what = what or (f"image {path}" if not isinstance(path, bytes) else "the query image")
    if not isinstance(path, bytes) and not Path(path).is_file():
        raise UsageError(f"no such image file: {path}")
    return to_model_pixels(decode_image(path, None, what), shape, what)


def to_float(pixels: np.ndarray) -> np.ndarray:
    """uint8 ``[N, H, W]`` / ``[N, H, W, 3]`` -> float32 NCHW in [-1, 1]."""
    x = np.asarray(pixels, dtype=np.float32) / 127.5 - 1.0
    return x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
