"""Image I/O at the boundary: uint8 arrays <-> PNG grids, .npy files, image files."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from diffusio.errors import UsageError
from diffusio._io import atomic_write_bytes, check_output


def make_grid(pixels: np.ndarray, ncol: int | None = None, pad: int = 2, scale: int = 1) -> np.ndarray:
    """Tile uint8 images ``[N, H, W]`` or ``[N, H, W, 3]`` into one image with a padding border."""
    pixels = np.asarray(pixels)
    n, h, w = pixels.shape[:3]
    ncol = ncol or math.ceil(math.sqrt(n))
    nrow = math.ceil(n / ncol)
    shape = (nrow * (h + pad) + pad, ncol * (w + pad) + pad) + pixels.shape[3:]
    grid = np.full(shape, 255, dtype=np.uint8)
    for k in range(n):
        r, c = divmod(k, ncol)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = pixels[k]
    if scale > 1:
        grid = grid.repeat(scale, 0).repeat(scale, 1)
    return grid


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def save_images(pixels: np.ndarray, path: str | Path, ncol: int | None = None, scale: int = 1,
                finish: Callable[[np.ndarray], np.ndarray] | None = None) -> Path:
    """``.npy``: the raw uint8 array; ``.png``/``.jpg``: a grid (one image if N == 1), passed
    through ``finish`` (e.g. a watermark stamp) before it is written."""
    path = check_output(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(pixels, dtype=np.uint8), allow_pickle=False)
        atomic_write_bytes(path, buf.getvalue())
    elif suffix in (".png", ".jpg", ".jpeg", ".gif", ".webp"):
        image = pixels[0] if len(pixels) == 1 else make_grid(pixels, ncol)
        if scale > 1:
            image = image.repeat(scale, 0).repeat(scale, 1)
        if finish is not None:
            image = finish(image)
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format=Image.registered_extensions()[suffix])
        atomic_write_bytes(path, buf.getvalue())
    else:
        raise UsageError(f"unknown output type {suffix or '(none)'!r} for {path}; use .png or .npy")
    return path


MAX_PIXELS = 4096 * 4096  # decoded pixels any image file may have (a 243 KB PNG can claim 16000 x 16000)


def decode_image(source: str | Path | bytes, mode: str | None = None, what: str | None = None) -> np.ndarray:
    """The one door for image files: a path or PNG/JPEG bytes -> uint8 array in ``mode`` ("L",
    "RGB"; None: "L" for grey files, else "RGB"), refusing before decoding anything with more
    than :data:`MAX_PIXELS` pixels."""
    what = what or f"image {source}"
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
            if img.size[0] * img.size[1] > MAX_PIXELS:
                raise UsageError(f"{what} declares {img.size[0]}x{img.size[1]} pixels, more than the "
                                 f"{MAX_PIXELS:,} diffusio reads; give a smaller image")
            if mode is None:
                mode = "L" if img.mode in ("L", "1", "I;16", "I") else "RGB"
            return np.asarray(img.convert(mode))
    except UsageError:
        raise
    except UnidentifiedImageError:
        raise UsageError(f"cannot read {what}: it is not a PNG or JPEG image") from None
    except (OSError, Image.DecompressionBombError, ValueError) as err:
        raise UsageError(f"cannot read {what}: {err}; use a PNG or JPEG") from None


def load_image(path: str | Path, channels: int, size: tuple[int, int] | None = None) -> np.ndarray:
    """An image file -> float32 CHW in [-1, 1], converted to the model's channels (and size)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"no such image file: {path}")
    pixels = decode_image(path, "L" if channels == 1 else "RGB")
    if size is not None and pixels.shape[:2] != tuple(size):
        pixels = np.asarray(Image.fromarray(pixels).resize((size[1], size[0]), Image.BILINEAR))
    arr = pixels.astype(np.float32)
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return arr / 127.5 - 1.0


WHITE = 200  # padding and empty cells are white (255); the margin absorbs a watermark stamp and JPEG ringing


def split_grid(image: np.ndarray, h: int, w: int, pad: int = 2) -> np.ndarray | None:
    """Tiles ``[N, h, w]`` of a grid written by :func:`make_grid` (any ``scale``), or None if it is not one.

    Empty cells (all padding white) are dropped.
    """
    H, W = image.shape[:2]
    for scale in range(1, 9):
        if H % scale or W % scale:
            continue
        small = image[::scale, ::scale]
        rows, cols = (small.shape[0] - pad) / (h + pad), (small.shape[1] - pad) / (w + pad)
        if rows < 1 or cols < 1 or rows != int(rows) or cols != int(cols):
            continue
        padding = np.ones(small.shape[:2], bool)
        tiles = []
        for r in range(int(rows)):
            for c in range(int(cols)):
                y, x = pad + r * (h + pad), pad + c * (w + pad)
                padding[y:y + h, x:x + w] = False
                tiles.append(small[y:y + h, x:x + w])
        if small[padding].min() < WHITE:
            continue  # the size fits, but there is no white padding between cells: not our grid
        tiles = [t for t in tiles if t.min() < WHITE]
        if tiles:
            return np.stack(tiles)
    return None


def shrink_upscaled(image: np.ndarray, h: int, w: int) -> np.ndarray | None:
    """One image saved with ``--scale s`` (an ``s*h`` x ``s*w`` picture) back at ``h`` x ``w``, else None."""
    H, W = image.shape[:2]
    s = H // h
    if s < 2 or (H, W) != (s * h, s * w):
        return None
    blocks = image.reshape(h, s, w, s, *image.shape[2:]).astype(np.float64).mean(axis=(1, 3))
    return np.rint(blocks).astype(np.uint8)


def read_model_images(path: str | Path, shape: tuple[int, int, int]) -> np.ndarray:
    """Images for a model of ``shape`` (C, H, W) as float [N, C, H, W] in [-1, 1].

    Takes one image of the model's size, a grid PNG written by ``diffusio generate``, the labelled
    picture of ``diffusio demo``, or a ``.npy`` uint8 array ``[N, H, W]`` (grey) / ``[N, H, W, 3]`` (colour).
    """
    path = Path(path)
    c, h, w = shape
    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    if path.suffix.lower() == ".npy":
        try:
            pixels = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise UsageError(f"cannot read {path}: {err}; give a .npy written by diffusio generate") from err
        one = (h, w) if c == 1 else (h, w, 3)  # one image; a leading N is optional
        if pixels.dtype != np.uint8 or pixels.shape[-len(one):] != one or pixels.ndim > len(one) + 1:
            raise UsageError(f"{path} holds {pixels.dtype} {pixels.shape}; expected uint8 images of {h}x{w}")
        pixels = pixels.reshape((-1,) + one)
    else:
        pixels = decode_image(path, "L" if c == 1 else "RGB")
        if pixels.shape[:2] == (h, w):
            pixels = pixels[None]
        else:
            tiles = split_grid(pixels, h, w)
            if tiles is None:
                tiles = split_labelled(pixels, h, w)
            if tiles is None and (one := shrink_upscaled(pixels, h, w)) is not None:
                tiles = one[None]
            if tiles is None:
                raise UsageError(f"{path} is {pixels.shape[1]}x{pixels.shape[0]} pixels, neither one {w}x{h} image "
                                 "(or one saved with --scale) nor a grid written by diffusio generate or demo; crop one "
                                 "image out or pass the .npy")
            pixels = tiles
    from diffusio.generative.data.datasets import to_unit_range

    return to_unit_range(pixels[:, None] if c == 1 else pixels.transpose(0, 3, 1, 2))


LABEL_WIDTH = 150  # the label column of :func:`labelled_rows` (``diffusio demo``'s picture)


def split_labelled(image: np.ndarray, h: int, w: int, label_width: int = LABEL_WIDTH,
                   pad: int = 2) -> np.ndarray | None:
    """Tiles ``[N, h, w]`` of a picture written by :func:`labelled_rows`, or None if it is not one."""
    strips = image[:, label_width:]
    if strips.shape[1] == 0:
        return None
    for scale in range(1, 9):
        strip_h = scale * (h + 2 * pad)  # one make_grid row: the cells with padding above and below
        if strips.shape[0] % strip_h:
            continue
        rows = [split_grid(strips[y:y + strip_h], h, w, pad) for y in range(0, strips.shape[0], strip_h)]
        if all(r is not None for r in rows):
            return np.concatenate(rows)
    return None


def fit_text(draw, text: str, width: int) -> str:
    """``text``, shortened with "..." until it fits ``width`` pixels (it must not run into the images)."""
    if draw.textlength(text) <= width:
        return text
    while text and draw.textlength(text + "...") > width:
        text = text[:-1]
    return text + "..."


def labelled_rows(rows: list[np.ndarray], labels: list[str], scale: int = 2, label_width: int = LABEL_WIDTH) -> np.ndarray:
    """One row of uint8 grey images per label, with the label written on the left."""
    from PIL import ImageDraw

    strips = [make_grid(r, ncol=len(r), scale=scale) for r in rows]
    h, w = strips[0].shape[:2]
    canvas = Image.new("L", (label_width + w, h * len(rows)), 255)
    draw = ImageDraw.Draw(canvas)
    for i, (strip, label) in enumerate(zip(strips, labels)):
        canvas.paste(Image.fromarray(strip if strip.ndim == 2 else strip.mean(-1).astype(np.uint8)),
                     (label_width, i * h))
        draw.text((6, i * h + h // 2 - 6), fit_text(draw, label, label_width - 10), fill=0)
    return np.asarray(canvas)
