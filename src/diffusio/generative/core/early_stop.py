"""Early stopping and NFE counting as denoiser wrappers, so every sampler gets them for free.

Late in sampling the clean-image estimate barely moves; :class:`EarlyStopping`
watches it and, once its relative change stays below ``tol`` for ``patience``
consecutive evaluations, ends sampling with that estimate (the jump to sigma = 0
that the remaining steps would approach).
"""

from __future__ import annotations

import torch
from torch import nn


class Converged(Exception):
    """Raised inside a sampler to end it early; carries the final clean estimate."""

    def __init__(self, denoised: torch.Tensor):
        super().__init__("denoised estimate converged")
        self.denoised = denoised


class CountingDenoiser(nn.Module):
    """Counts network evaluations (NFE), one per call whatever the batch."""

    def __init__(self, denoiser):
        super().__init__()
        self.inner, self.nfe = denoiser, 0
        self.sigma_min, self.sigma_max = denoiser.sigma_min, denoiser.sigma_max

    def forward(self, x, sigma, cond=None):
        self.nfe += 1
        return self.inner(x, sigma, cond)


class EarlyStopping(nn.Module):
    """Stop once ||D_k - D_{k-1}|| / ||D_{k-1}|| < tol for ``patience`` evaluations in a row.

    The change is averaged over the images of the batch: the batch shares its network calls, so
    it stops as a whole, and one slow image should not hold back the rest (the worst image of a
    guided batch still moves by ~10% per step where the mean has settled to ~5%).
    """

    def __init__(self, denoiser, tol: float, patience: int = 2):
        super().__init__()
        if not tol > 0:
            raise ValueError(f"early-stop tolerance must be > 0, got {tol}")
        self.inner, self.tol, self.patience = denoiser, float(tol), int(patience)
        self.sigma_min, self.sigma_max = denoiser.sigma_min, denoiser.sigma_max
        self.previous, self.streak = None, 0

    def forward(self, x, sigma, cond=None):
        denoised = self.inner(x, sigma, cond)
        if self.previous is not None:
            change = (denoised - self.previous).flatten(1).norm(dim=1)
            scale = self.previous.flatten(1).norm(dim=1).clamp_min(1e-8)
            self.streak = self.streak + 1 if float((change / scale).mean()) < self.tol else 0
            if self.streak >= self.patience:
                raise Converged(denoised)
        self.previous = denoised
        return denoised
