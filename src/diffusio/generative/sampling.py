"""From noise to images: schedule + guidance + sampler, with the seed in one place."""

from __future__ import annotations

import torch

from diffusio.generative.guidance import CFGDenoiser
from diffusio.generative.samplers import get_sampler
from diffusio.generative.schedules import get_sigmas


def initial_noise(n: int, image: dict, sigma_max: float, seed: int) -> tuple[torch.Tensor, torch.Generator]:
    """Start noise for ``n`` images; image i depends only on the seed, not on n."""
    gen = torch.Generator().manual_seed(seed)
    shape = (n, image["channels"], image["height"], image["width"])
    return torch.randn(shape, generator=gen) * sigma_max, gen


@torch.no_grad()
def sample(denoiser, n: int, image: dict, *, cond: torch.Tensor | None = None, steps: int = 20,
           sampler: str = "dpmpp-2m", guidance: float = 1.0, seed: int = 0, schedule: str = "karras",
           callback=None, x: torch.Tensor | None = None, sigmas: torch.Tensor | None = None) -> torch.Tensor:
    """Draw ``n`` images in [-1, 1] (NCHW) from a denoiser."""
    if sigmas is None:
        sigmas = get_sigmas(schedule, steps, denoiser)
    guided = CFGDenoiser(denoiser, guidance) if cond is not None else denoiser
    noise, gen = initial_noise(n, image, float(sigmas[0]), seed)
    x = noise if x is None else x
    out = get_sampler(sampler)(guided, x, sigmas, cond=cond, callback=callback, generator=gen)
    return out.clamp(-1, 1)
