"""Samplers: plain functions with one signature (as in k-diffusion).

    sample_X(denoiser, x, sigmas, *, cond=None, callback=None, generator=None, **options) -> x0

``denoiser(x, sigma, cond)`` returns the clean estimate; ``x`` starts as
``sigmas[0] * noise``; ``sigmas`` decreases to 0.  A sampler knows nothing of
the network, its preconditioning or guidance.  ``callback`` receives a dict
``{i, x, sigma, sigma_next, denoised}`` after every step.

>>> import torch
>>> D = lambda x, sigma, cond=None: x * 0.25 / (0.25 + sigma ** 2)   # exact denoiser of N(0, 0.25)
>>> from diffusio.generative.schedules import get_sigmas_karras
>>> sigmas = get_sigmas_karras(30, 0.002, 80.0)
>>> out = sample_heun(D, torch.randn(4096, 1, 1, 1, generator=torch.Generator().manual_seed(0)) * 80, sigmas)
>>> round(float(out.std()), 1)
0.5
"""

from __future__ import annotations

from typing import Callable

import torch

Callback = Callable[[dict], None] | None


def _denoise(denoiser, x, sigma, cond):
    return denoiser(x, sigma * x.new_ones(x.shape[0]), cond)


def _notify(callback, i, x, sigma, sigma_next, denoised):
    if callback is not None:
        callback({"i": i, "x": x, "sigma": sigma, "sigma_next": sigma_next, "denoised": denoised})


def _noise_like(x, generator):
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


def to_d(x, sigma, denoised):
    """The probability-flow ODE derivative dx/dsigma = (x - D(x)) / sigma."""
    return (x - denoised) / sigma


def ancestral_step(sigma_from, sigma_to, eta: float = 1.0):
    """Split a step to sigma_to into a deterministic part (down) and fresh noise (up).

    With eta = 1 this is DDPM's posterior; with eta in [0, 1] it is DDIM's
    sigma_t(eta) written in sigma-space.
    """
    if not eta or sigma_to == 0:
        return sigma_to, sigma_to * 0
    up = min(sigma_to, eta * (sigma_to ** 2 * (sigma_from ** 2 - sigma_to ** 2) / sigma_from ** 2) ** 0.5)
    down = (sigma_to ** 2 - up ** 2) ** 0.5
    return down, up


@torch.no_grad()
def sample_euler(denoiser, x, sigmas, *, cond=None, callback: Callback = None, generator=None):
    """Euler steps on the probability-flow ODE (EDM Algorithm 1 without churn)."""
    for i in range(len(sigmas) - 1):
        denoised = _denoise(denoiser, x, sigmas[i], cond)
        x = x + to_d(x, sigmas[i], denoised) * (sigmas[i + 1] - sigmas[i])
        _notify(callback, i, x, sigmas[i], sigmas[i + 1], denoised)
    return x


@torch.no_grad()
def sample_heun(denoiser, x, sigmas, *, cond=None, callback: Callback = None, generator=None):
    """Heun's second-order method (EDM Algorithm 1); the last step to 0 is Euler."""
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, sigma, cond)
        d = to_d(x, sigma, denoised)
        x_euler = x + d * (sigma_next - sigma)
        if sigma_next == 0:
            x = x_euler
        else:
            denoised_next = _denoise(denoiser, x_euler, sigma_next, cond)
            d_next = to_d(x_euler, sigma_next, denoised_next)
            x = x + (d + d_next) / 2 * (sigma_next - sigma)
        _notify(callback, i, x, sigma, sigma_next, denoised)
    return x


@torch.no_grad()
def sample_ddim(denoiser, x, sigmas, *, cond=None, callback: Callback = None, generator=None,
                eta: float = 0.0):
    """DDIM (Song et al. 2021) in sigma-space: eta = 0 is deterministic, eta = 1 is DDPM."""
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, sigma, cond)
        down, up = ancestral_step(sigma, sigma_next, eta)
        x = denoised + to_d(x, sigma, denoised) * down
        if up > 0:
            x = x + _noise_like(x, generator) * up
        _notify(callback, i, x, sigma, sigma_next, denoised)
    return x


def sample_ddpm(denoiser, x, sigmas, *, cond=None, callback: Callback = None, generator=None):
    """DDPM ancestral sampling: the posterior q(x_{t-1} | x_t, x0_hat), i.e. DDIM with eta = 1."""
    return sample_ddim(denoiser, x, sigmas, cond=cond, callback=callback, generator=generator, eta=1.0)


@torch.no_grad()
def sample_dpmpp_2m(denoiser, x, sigmas, *, cond=None, callback: Callback = None, generator=None):
    """DPM-Solver++(2M) (Lu et al. 2022): second-order multistep in log-SNR, one NFE per step."""
    old_denoised = None
    h_last = None
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, sigma, cond)
        if sigma_next == 0:
            x = denoised
        else:
            t, t_next = -sigma.log(), -sigma_next.log()
            h = t_next - t
            if old_denoised is None:
                d = denoised
            else:
                r = h_last / h
                d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old_denoised
            x = (sigma_next / sigma) * x - torch.expm1(-h) * d
            h_last = h
        old_denoised = denoised
        _notify(callback, i, x, sigma, sigma_next, denoised)
    return x


SAMPLERS: dict[str, tuple[Callable, str]] = {
    "euler": (sample_euler, "Euler on the probability-flow ODE; 1 NFE/step, deterministic"),
    "heun": (sample_heun, "Heun 2nd order (EDM); 2 NFE/step except the last, deterministic"),
    "dpmpp-2m": (sample_dpmpp_2m, "DPM-Solver++(2M) multistep; 1 NFE/step, deterministic (default)"),
    "ddim": (sample_ddim, "DDIM; 1 NFE/step, eta=0 deterministic"),
    "ddpm": (sample_ddpm, "DDPM ancestral; 1 NFE/step, stochastic"),
}


def get_sampler(name: str) -> Callable:
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; known: {', '.join(SAMPLERS)}")
    return SAMPLERS[name][0]
