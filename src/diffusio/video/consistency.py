"""One object, one look: hold a moving object's appearance fixed across a clip while it is sampled.

In a real Moving Fashion-MNIST clip the object is one sprite shifted by whole pixels from frame to
frame; a generated clip's frames are denoised together but nothing ties their look, and one or two
frames of sixteen drift toward a neighbouring garment (docs/benchmarks-video.md, "Appearance
consistency").  This wrapper reads, at every step, where the object is in each frame of the
denoised estimate (its brightness centroid, each pixel weighted by how far it is above the judges'
threshold, so that a faint pixel crossing it does not make the centroid jump), shifts the frames
so the object sits in one place, takes the **median** frame (robust to the odd frame out), and
shifts it back to every frame's place: the projection of the estimate onto "one sprite,
translated".  The denoiser's output moves toward that projection by ``strength`` (0: untouched,
1: all the way):

``D'(x, sigma) = D(x, sigma) + s (P(D(x, sigma)) - D(x, sigma))``

so the centroid path, which carries the motion, is kept, and only the look is shared.  It is a
prior of one object in rigid translation: right for the shipped model's clips, wrong for an object
that turns or changes shape, or for clips of two objects (one centroid cannot align both), so it is
off unless a model's ``sampling.consistency`` or the caller turns it on.

>>> x = torch.full((1, 1, 3, 8, 8), -1.0); x[0, 0, 0, 1:3, 1:3] = 1; x[0, 0, 1, 2:4, 3:5] = 1
>>> x[0, 0, 2, 4:6, 4:6] = 0.5
>>> p = one_look(x)
>>> p[0, 0, 0, 1:3, 1:3].tolist(), p[0, 0, 2, 4:6, 4:6].tolist()   # every frame shows the median sprite
([[1.0, 1.0], [1.0, 1.0]], [[1.0, 1.0], [1.0, 1.0]])
"""

from __future__ import annotations

import torch
from torch import nn

from diffusio.errors import UsageError

BLACK = -1.0  # the canvas, in the network's [-1, 1]
THRESHOLD = 40 / 127.5 - 1  # pixels below this do not count toward the centroid (as the judges' 40 of 255)


def centroids(x: torch.Tensor) -> torch.Tensor:
    """Brightness centroids (x, y) of every frame of clips (N, C, T, H, W): (N, T, 2) in pixels; a
    frame with nothing above the threshold gets the middle of the canvas."""
    grey = x.mean(dim=1)
    w = (grey - THRESHOLD).clamp(min=0)
    mass = w.sum(dim=(2, 3))
    h, wd = grey.shape[-2:]
    ys = torch.arange(h, dtype=x.dtype)
    xs = torch.arange(wd, dtype=x.dtype)
    cx = (w.sum(dim=2) * xs).sum(dim=2) / mass.clamp(min=1e-12)
    cy = (w.sum(dim=3) * ys).sum(dim=2) / mass.clamp(min=1e-12)
    empty = mass <= 1e-12
    cx = torch.where(empty, torch.full_like(cx, (wd - 1) / 2), cx)
    cy = torch.where(empty, torch.full_like(cy, (h - 1) / 2), cy)
    return torch.stack([cx, cy], dim=-1)


def shift(x: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """Clips (N, C, T, H, W) with frame (n, t) moved by whole pixels (dx[n, t], dy[n, t]); what comes
    in from outside the canvas is black."""
    n, c, t, h, w = x.shape
    ys = torch.arange(h)[None, None, :] - dy[..., None]  # source row of each target row, (N, T, H)
    xs = torch.arange(w)[None, None, :] - dx[..., None]
    inside = ((ys >= 0) & (ys < h))[..., :, None] & ((xs >= 0) & (xs < w))[..., None, :]  # (N, T, H, W)
    rows = ys.clamp(0, h - 1)[..., :, None].expand(n, t, h, w)
    cols = xs.clamp(0, w - 1)[..., None, :].expand(n, t, h, w)
    flat = (rows * w + cols).reshape(n, 1, t, h * w).expand(n, c, t, h * w)
    moved = x.reshape(n, c, t, h * w).gather(3, flat).reshape(n, c, t, h, w)
    return torch.where(inside[:, None], moved, torch.full_like(moved, BLACK))


def one_look(x: torch.Tensor) -> torch.Tensor:
    """The projection of clips (N, C, T, H, W) onto one sprite translated: every frame's object is
    moved to the clip's mean centroid, the median frame is taken, and moved back to each frame."""
    c = centroids(x)
    to_home = whole(c.mean(dim=1, keepdim=True)) - whole(c)
    sprite = shift(x, to_home[..., 0], to_home[..., 1]).median(dim=2, keepdim=True).values
    sprite = sprite.expand_as(x)
    return shift(sprite, -to_home[..., 0], -to_home[..., 1])


def whole(c: torch.Tensor) -> torch.Tensor:
    """Pixels rounded half up, the same way everywhere (round-half-even would move a sprite's anchor
    by one pixel between frames whose centroids sit at 1.5 and 4.5)."""
    return (c + 0.5).floor().long()


class ConsistentDenoiser(nn.Module):
    """``denoiser`` whose estimate of every clip is pulled toward :func:`one_look` by ``strength``."""

    def __init__(self, denoiser: nn.Module, strength: float):
        super().__init__()
        self.inner, self.strength = denoiser, check_strength(strength)
        self.sigma_min, self.sigma_max = denoiser.sigma_min, denoiser.sigma_max

    def forward(self, x, sigma, cond=None):
        d = self.inner(x, sigma, cond=cond)
        return d + self.strength * (one_look(d) - d)


def check_strength(strength) -> float:
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 <= strength <= 1:
        raise UsageError(f"consistency must be a number from 0 (off) to 1 (one look in every frame), got {strength!r}")
    return float(strength)
