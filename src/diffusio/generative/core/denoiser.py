"""Preconditioning: wrap a raw net into a denoiser ``D(x, sigma, cond) -> x0_hat``.

Everything works in sigma-space, ``x = x0 + sigma * eps`` (EDM, Karras et al.
2022).  A VP/DDPM model is the same process rescaled:
``sigma_t = sqrt((1 - abar_t) / abar_t)`` and ``x_sigma = x_t / sqrt(abar_t)``.

Each preconditioning is one small class holding the paper's formulas, so the
sampler never needs to know which one it is driving.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def expand_rows(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """One value per row of ``x``, shaped to broadcast over its other axes (images, table rows)."""
    return values.reshape(-1, *([1] * (x.ndim - 1)))


class Denoiser(nn.Module):
    """Base class: ``forward(x, sigma, cond)`` returns the clean-image estimate."""

    sigma_min: float
    sigma_max: float

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    @staticmethod
    def _sigma(sigma: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(-1)
        return sigma.expand(x.shape[0]) if sigma.numel() == 1 else sigma


class EDMDenoiser(Denoiser):
    """EDM preconditioning (Karras et al. 2022, Table 1).

    >>> D = EDMDenoiser(lambda x, c_noise, cond: torch.zeros_like(x), sigma_data=0.5)
    >>> float(D.c_skip(torch.tensor(0.5)))   # sigma == sigma_data: half skip
    0.5
    """

    def __init__(self, net: nn.Module, sigma_data: float = 0.5, sigma_min: float = 0.002,
                 sigma_max: float = 80.0):
        super().__init__(net)
        self.sigma_data, self.sigma_min, self.sigma_max = sigma_data, sigma_min, sigma_max

    def c_skip(self, sigma):
        return self.sigma_data ** 2 / (sigma ** 2 + self.sigma_data ** 2)

    def c_out(self, sigma):
        return sigma * self.sigma_data / (sigma ** 2 + self.sigma_data ** 2).sqrt()

    def c_in(self, sigma):
        return 1 / (sigma ** 2 + self.sigma_data ** 2).sqrt()

    def c_noise(self, sigma):
        return sigma.log() / 4

    def loss_weight(self, sigma):
        """lambda(sigma) that makes the effective training target unit-variance."""
        return (sigma ** 2 + self.sigma_data ** 2) / (sigma * self.sigma_data) ** 2

    def forward(self, x, sigma, cond=None):
        sigma = self._sigma(sigma, x)
        s = expand_rows(sigma, x)
        raw = self.net(x * self.c_in(s), self.c_noise(sigma), cond)
        return self.c_skip(s) * x + self.c_out(s) * raw


def vp_alphas_cumprod(num_train_timesteps: int = 1000, beta_start: float = 1e-4,
                      beta_end: float = 0.02, beta_schedule: str = "linear") -> torch.Tensor:
    """DDPM's abar_t, in float64, for the beta schedules diffusers uses."""
    if beta_schedule == "linear":
        betas = torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float64)
    elif beta_schedule == "scaled_linear":
        betas = torch.linspace(beta_start ** 0.5, beta_end ** 0.5, num_train_timesteps, dtype=torch.float64) ** 2
    elif beta_schedule == "cosine":  # Nichol & Dhariwal 2021, clipped at 0.999 as they do
        steps = torch.arange(num_train_timesteps + 1, dtype=torch.float64) / num_train_timesteps
        f = torch.cos((steps + 0.008) / 1.008 * math.pi / 2) ** 2
        betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
    else:
        raise ValueError(f"unknown beta_schedule {beta_schedule!r}; use linear, scaled_linear or cosine")
    return torch.cumprod(1 - betas, dim=0)


class VPDenoiser(Denoiser):
    """Discrete-time VP (DDPM) eps-prediction, seen as a sigma-space denoiser.

    The net is called on ``x_t = x / sqrt(1 + sigma^2)`` with the (fractional)
    timestep whose sigma matches, interpolated in log-sigma between training
    timesteps, and predicts eps; then ``x0_hat = x - sigma * eps``.
    """

    def __init__(self, net: nn.Module, num_train_timesteps: int = 1000, beta_start: float = 1e-4,
                 beta_end: float = 0.02, beta_schedule: str = "linear", prediction: str = "epsilon"):
        super().__init__(net)
        if prediction not in ("epsilon", "v_prediction", "sample"):
            raise ValueError(f"unknown prediction {prediction!r}; use epsilon, v_prediction or sample")
        self.prediction = prediction
        abar = vp_alphas_cumprod(num_train_timesteps, beta_start, beta_end, beta_schedule)
        sigmas = ((1 - abar) / abar).sqrt()
        self.register_buffer("alphas_cumprod", abar, persistent=False)
        self.register_buffer("train_sigmas", sigmas, persistent=False)
        self.register_buffer("log_sigmas", sigmas.log(), persistent=False)
        self.sigma_min, self.sigma_max = float(sigmas[0]), float(sigmas[-1])

    def sigma_to_t(self, sigma: torch.Tensor) -> torch.Tensor:
        """Fractional timestep by linear interpolation in log sigma (exact on the grid)."""
        log_sigma = sigma.double().log()
        ls = self.log_sigmas
        hi = torch.searchsorted(ls, log_sigma).clamp(1, len(ls) - 1)
        lo = hi - 1
        w = ((log_sigma - ls[lo]) / (ls[hi] - ls[lo])).clamp(0, 1)
        return (lo + w).to(sigma.dtype)

    def t_to_sigma(self, t: torch.Tensor) -> torch.Tensor:
        t = t.double()
        lo = t.floor().long().clamp(0, len(self.log_sigmas) - 1)
        hi = t.ceil().long().clamp(0, len(self.log_sigmas) - 1)
        w = t - t.floor()
        return ((1 - w) * self.log_sigmas[lo] + w * self.log_sigmas[hi]).exp().float()

    def forward(self, x, sigma, cond=None):
        sigma = self._sigma(sigma, x)
        s = expand_rows(sigma, x)
        c_in = 1 / (s ** 2 + 1).sqrt()
        raw = self.net(x * c_in, self.sigma_to_t(sigma), cond)
        if self.prediction == "epsilon":
            return x - s * raw
        if self.prediction == "sample":
            return raw
        # v = alpha * eps - sigma_vp * x0, with alpha = c_in, sigma_vp = s * c_in
        return c_in ** 2 * x - s * c_in * raw


PRECONDITIONINGS = {"edm": EDMDenoiser, "vp": VPDenoiser}


def build_denoiser(net: nn.Module, kind: str = "edm", **kwargs) -> Denoiser:
    if kind not in PRECONDITIONINGS:
        raise ValueError(f"unknown preconditioning {kind!r}; known: {', '.join(PRECONDITIONINGS)}")
    return PRECONDITIONINGS[kind](net, **kwargs)
