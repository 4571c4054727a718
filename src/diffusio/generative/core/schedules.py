"""Sigma schedules: 1-D tensors of decreasing noise levels ending in 0.

>>> [round(float(s), 4) for s in get_sigmas_karras(4, 0.002, 80.0)]
[80.0, 9.7232, 0.47, 0.002, 0.0]
"""

from __future__ import annotations

import math

import torch


def append_zero(sigmas: torch.Tensor) -> torch.Tensor:
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def get_sigmas_karras(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    """Karras et al. (2022) eq. 5: uniform steps in sigma^(1/rho)."""
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    min_inv, max_inv = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return append_zero(((max_inv + ramp * (min_inv - max_inv)) ** rho).float())


def get_sigmas_exponential(n: int, sigma_min: float, sigma_max: float) -> torch.Tensor:
    """Uniform steps in log sigma."""
    return append_zero(torch.linspace(math.log(sigma_max), math.log(sigma_min), n, dtype=torch.float64).exp().float())


def vp_timesteps(n: int, num_train_timesteps: int = 1000, spacing: str = "trailing",
                 steps_offset: int = 0) -> torch.Tensor:
    """Integer DDPM timesteps, highest first, spaced as diffusers' ``timestep_spacing``."""
    T = num_train_timesteps
    if not 1 <= n <= T:
        raise ValueError(f"steps must be in 1..{T}, got {n}")
    if spacing == "linspace":
        ts = torch.linspace(0, T - 1, n, dtype=torch.float64).round().flip(0)
    elif spacing == "leading":
        ratio = T // n
        ts = (torch.arange(n, dtype=torch.float64) * ratio).flip(0) + steps_offset
    elif spacing == "trailing":
        ratio = T / n
        ts = (torch.arange(T, 0, -ratio, dtype=torch.float64)).round() - 1
    else:
        raise ValueError(f"unknown spacing {spacing!r}; use linspace, leading or trailing")
    return ts.long()


def get_sigmas_vp(n: int, alphas_cumprod: torch.Tensor, spacing: str = "trailing") -> torch.Tensor:
    """Sigmas of a discrete VP model at the spaced timesteps: sigma_t = sqrt((1-abar)/abar)."""
    ts = vp_timesteps(n, len(alphas_cumprod), spacing)
    abar = alphas_cumprod.double()[ts]
    return append_zero(((1 - abar) / abar).sqrt().float())


SCHEDULES = ("karras", "exponential", "vp-trailing", "vp-leading", "vp-linspace", "distilled")


def get_sigmas(name: str, n: int, denoiser) -> torch.Tensor:
    """Schedule by name, with the noise range the denoiser was trained on."""
    if n < 1:
        raise ValueError(f"steps must be at least 1, got {n}")
    if name == "karras":
        return get_sigmas_karras(n, denoiser.sigma_min, denoiser.sigma_max)
    if name == "exponential":
        return get_sigmas_exponential(n, denoiser.sigma_min, denoiser.sigma_max)
    if name.startswith("vp-"):
        # A continuous-sigma (EDM) model can walk a DDPM schedule too: the sigmas of the standard
        # linear-beta schedule, as diffusers' schedulers would give it.
        abar = getattr(denoiser, "alphas_cumprod", None)
        if abar is None:
            from diffusio.generative.core.denoiser import vp_alphas_cumprod

            abar = vp_alphas_cumprod(1000)
        return get_sigmas_vp(n, abar, name[3:])
    if name == "distilled":
        raise ValueError("the distilled schedule is stored in a distilled model's config; load one made by "
                         "'diffusio distill', or use karras")
    raise ValueError(f"unknown schedule {name!r}; known: {', '.join(SCHEDULES)}")
