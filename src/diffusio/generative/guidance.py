"""Classifier-free guidance (Ho & Salimans 2022) as a denoiser that wraps a denoiser.

``D_w(x) = D(x, null) + w * (D(x, cond) - D(x, null))``: w = 1 is plain
conditional sampling, w = 0 unconditional, w > 1 sharper adherence.  The null
condition is the all-zero vector the model saw under condition dropout.
"""

from __future__ import annotations

import torch
from torch import nn


class CFGDenoiser(nn.Module):
    def __init__(self, denoiser: nn.Module, scale: float):
        super().__init__()
        if scale < 0:
            raise ValueError(f"guidance must be >= 0, got {scale}")
        self.inner, self.scale = denoiser, float(scale)
        self.sigma_min, self.sigma_max = denoiser.sigma_min, denoiser.sigma_max

    def forward(self, x, sigma, cond=None):
        if cond is None or self.scale == 1.0:
            return self.inner(x, sigma, cond)
        if self.scale == 0.0:
            return self.inner(x, sigma, torch.zeros_like(cond))
        sigma = torch.as_tensor(sigma, dtype=x.dtype).reshape(-1).expand(x.shape[0])
        both = self.inner(torch.cat([x, x]), torch.cat([sigma, sigma]), torch.cat([torch.zeros_like(cond), cond]))
        uncond, conditional = both.chunk(2)
        return uncond + self.scale * (conditional - uncond)
