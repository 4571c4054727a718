"""From noise to images: schedule + guidance + early stopping + sampler, with the seed in one place."""

from __future__ import annotations

from typing import Callable

import torch

from diffusio.generative.core.early_stop import Converged, CountingDenoiser, EarlyStopping
from diffusio.generative.core.guidance import AutoGuidance, CFGDenoiser, ClassifierGuidance
from diffusio.generative.core.samplers import DenoiserFn, get_sampler
from diffusio.generative.core.schedules import get_sigmas


# start_noise(noise, generator) -> the noise to start from; the generator continues the seeded
# stream, so whatever it draws is fixed by the seed too (trust.watermark.marking is one)
StartNoise = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def initial_noise(n: int, image: dict, sigma_max: float, seed: int) -> tuple[torch.Tensor, torch.Generator]:
    """Start noise for ``n`` images, and the generator that continues the same stream."""
    gen = torch.Generator().manual_seed(seed)
    shape = (n, image["channels"], image["height"], image["width"])
    return torch.randn(shape, generator=gen) * sigma_max, gen


@torch.no_grad()
def sample(denoiser: DenoiserFn, n: int, image: dict, *, cond: torch.Tensor | None = None, steps: int = 20,
           sampler: str = "dpmpp-2m", guidance: float = 1.0, seed: int = 0, schedule: str = "karras",
           callback=None, x: torch.Tensor | None = None, sigmas: torch.Tensor | None = None,
           early_stop: float | None = None, options: dict | None = None, stats: dict | None = None,
           clamp: bool = True, start_noise: StartNoise | None = None,
           attr_guidance: tuple | None = None,
           guidance_interval: tuple[float, float] | None = None,
           autoguidance: tuple | None = None,
           classifier_guidance: tuple[Callable, torch.Tensor, float] | None = None) -> torch.Tensor:
    """Draw ``n`` images in [-1, 1] (NCHW) from a denoiser.

    ``early_stop``: relative-change tolerance of the clean estimate (see :mod:`early_stop`);
    ``options``: extra sampler keywords (``eta`` for ddim, ``rtol``/``atol`` for adaptive);
    ``stats``: if given, receives ``nfe`` (network evaluations; a guided one counts once);
    ``clamp=False`` returns the ODE's end point as it is, for distillation targets;
    ``start_noise``: a hook that turns the plain start noise into the noise to start from (the
    trust layer's watermark is one), drawing from the seeded stream;
    ``attr_guidance``: (scale, width of the condition's trailing attribute block[, the prompt's guidance
    in rows with wishes]) to guide the attributes apart from the prompt (:mod:`guidance`);
    ``guidance_interval``: (lo, hi) noise levels where guidance applies; plain conditional elsewhere;
    ``autoguidance``: (guide denoiser, scale[, (lo, hi) noise levels]) to guide the model away from a
    weaker version of itself (:class:`~diffusio.generative.core.guidance.AutoGuidance`);
    classifier-free guidance, if any, then applies to the autoguided model;
    ``classifier_guidance``: (noise-aware classifier, wishes (n, classes), scale) to steer each image
    toward the classes its row wishes for, on top of the rest
    (:class:`~diffusio.generative.core.guidance.ClassifierGuidance`).
    """
    if sigmas is None:
        sigmas = get_sigmas(schedule, steps, denoiser)
    attr_scale, attr_dims, wish_scale = (*attr_guidance, None)[:3] if attr_guidance else (None, 0, None)
    base = denoiser if autoguidance is None else AutoGuidance(denoiser, *autoguidance)
    guided = (CFGDenoiser(base, guidance, attr_scale, attr_dims, interval=guidance_interval, wish_scale=wish_scale)
              if cond is not None else base)
    if classifier_guidance is not None:
        guided = ClassifierGuidance(guided, *classifier_guidance)
    counted = CountingDenoiser(guided)
    model = EarlyStopping(counted, early_stop) if early_stop else counted
    noise, gen = initial_noise(n, image, float(sigmas[0]), seed)
    if start_noise is not None:
        noise = start_noise(noise, gen)
    x = noise if x is None else x
    try:
        out = get_sampler(sampler)(model, x, sigmas, cond=cond, callback=callback, generator=gen, **(options or {}))
    except Converged as stop:
        out = stop.denoised
    if stats is not None:
        stats["nfe"] = stats.get("nfe", 0) + counted.nfe
    return out.clamp(-1, 1) if clamp else out
