"""A picture of the hits: the images in rank order, each with its rank and score underneath.

>>> import numpy as np
>>> from diffusio.search.index import Hit, SearchResult
>>> result = SearchResult("a bag", "text", [Hit(1, 0, "a.png", 0.92, 0.91, 0.012)], 0.1, 1,
...                       thumbnails=np.zeros((1, 28, 28), np.uint8))
>>> hits_picture(result).shape
(142, 420)
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from diffusio.generative.data.images import fit_text

SCALE = 3       # thumbnails enlarged this many times
LABEL_H = 26    # two lines of text under each thumbnail
TITLE_H = 22
MIN_WIDTH = 420


def hits_picture(result, ncol: int | None = None) -> np.ndarray:
    """uint8 picture (grey, or RGB for colour models) of a :class:`SearchResult`'s hits."""
    thumbs = np.asarray(result.thumbnails)
    n = len(thumbs)
    ncol = ncol or max(1, min(n, 10))
    nrow = max(1, math.ceil(n / ncol))
    h, w = thumbs.shape[1] * SCALE, thumbs.shape[2] * SCALE
    cell_w = max(w, 66) + 6
    colour = thumbs.ndim == 4
    mode = "RGB" if colour else "L"
    width = max(MIN_WIDTH, ncol * cell_w + 6)
    canvas = Image.new(mode, (width, TITLE_H + nrow * (h + LABEL_H + 6) + 4), "white" if colour else 255)
    draw = ImageDraw.Draw(canvas)
    black = (0, 0, 0) if colour else 0
    title = f"{result.kind} query: {result.query}"
    if result.reranked:
        title += f"  (first {result.reranked} re-sorted by text score)"
    draw.text((6, 5), fit_text(draw, title, width - 12), fill=black)
    for r, hit in enumerate(result.hits):
        row, col = divmod(r, ncol)
        x, y = 6 + col * cell_w, TITLE_H + row * (h + LABEL_H + 6)
        tile = Image.fromarray(thumbs[r]).resize((w, h), Image.NEAREST)
        canvas.paste(tile.convert(mode), (x, y))
        draw.text((x, y + h + 1), f"#{hit.rank} {hit.score:.3f}", fill=black)
        if hit.text_score is not None:
            draw.text((x, y + h + 13), f"m {hit.similarity:.2f} t{hit.text_score:+.2f}", fill=black)
    return np.asarray(canvas)


def save_hits(result, path: str | Path) -> Path:
    """Write the hits picture (``.png`` or ``.jpg``) atomically."""
    from diffusio._io import check_output
    from diffusio.generative.data.images import save_images

    path = check_output(path, suffixes=(".png", ".jpg", ".jpeg"))
    return save_images(hits_picture(result)[None], path)
