"""Classifier-free guidance (Ho & Salimans 2022) as a denoiser that wraps a denoiser.

``D_w(x) = D(x, null) + w * (D(x, cond) - D(x, null))``: w = 1 is plain
conditional sampling, w = 0 unconditional, w > 1 sharper adherence.  The null
condition is the all-zero vector the model saw under condition dropout.

Models trained with attributes (:mod:`attributes`) end their condition with an attribute block,
left out (zero) as a unit during training.  ``attr_scale`` guides that block on its own:

``D(x, null) + w * (D(x, text) - D(x, null)) + w_a * (D(x, text + attrs) - D(x, text))``

With ``w_a = w`` this is plain guidance on the whole condition; a larger ``w_a`` follows the
attribute wishes more closely at 1.5x the network evaluations (docs/editing.md measures it).
"""

from __future__ import annotations

import torch
from torch import nn


class CFGDenoiser(nn.Module):
    def __init__(self, denoiser: nn.Module, scale: float, attr_scale: float | None = None, attr_dims: int = 0):
        super().__init__()
        if scale < 0 or (attr_scale is not None and attr_scale < 0):
            raise ValueError(f"guidance must be >= 0, got {scale} (attributes: {attr_scale})")
        self.inner, self.scale = denoiser, float(scale)
        self.attr_scale = None if attr_scale is None or not attr_dims else float(attr_scale)
        self.attr_dims = int(attr_dims)
        self.sigma_min, self.sigma_max = denoiser.sigma_min, denoiser.sigma_max

    def forward(self, x, sigma, cond=None):
        if cond is not None and self.attr_scale is not None and cond[:, -self.attr_dims:].any():
            return self._with_attributes(x, sigma, cond)
        if cond is None or self.scale == 1.0:
            return self.inner(x, sigma, cond)
        if self.scale == 0.0:
            return self.inner(x, sigma, torch.zeros_like(cond))
        uncond, conditional = self._batched(x, sigma, [torch.zeros_like(cond), cond])
        return uncond + self.scale * (conditional - uncond)

    def _with_attributes(self, x, sigma, cond):
        text = cond.clone()
        text[:, -self.attr_dims:] = 0  # attributes left out, as in training
        uncond, text_only, full = self._batched(x, sigma, [torch.zeros_like(cond), text, cond])
        return uncond + self.scale * (text_only - uncond) + self.attr_scale * (full - text_only)

    def _batched(self, x, sigma, conds):
        """One network call for several conditions of the same batch."""
        sigma = torch.as_tensor(sigma, dtype=x.dtype).reshape(-1).expand(x.shape[0])
        k = len(conds)
        return self.inner(torch.cat([x] * k), torch.cat([sigma] * k), torch.cat(conds)).chunk(k)
