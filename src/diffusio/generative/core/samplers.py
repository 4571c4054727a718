"""Samplers: plain functions with one signature (as in k-diffusion).

    sample_X(denoiser, x, sigmas, *, cond=None, callback=None, generator=None, **options) -> x0

``denoiser(x, sigma, cond)`` returns the clean estimate; ``x`` starts as
``sigmas[0] * noise``; ``sigmas`` decreases to 0.  A sampler knows nothing of
the network, its preconditioning or guidance.  ``callback`` receives a dict
``{i, x, sigma, sigma_next, denoised}`` after every step.

>>> import torch
>>> D = lambda x, sigma, cond=None: x * 0.25 / (0.25 + sigma ** 2)   # exact denoiser of N(0, 0.25)
>>> from diffusio.generative.core.schedules import get_sigmas_karras
>>> sigmas = get_sigmas_karras(30, 0.002, 80.0)
>>> out = sample_heun(D, torch.randn(1024, 1, 1, 1, generator=torch.Generator().manual_seed(0)) * 80, sigmas)
>>> round(float(out.std()), 1)
0.5
"""

from __future__ import annotations

import math
from typing import Callable, Protocol

import torch

Callback = Callable[[dict], None] | None


class DenoiserFn(Protocol):
    """What a sampler drives: any callable ``D(x, sigma, cond) -> x0_hat`` (a
    :class:`~diffusio.generative.core.denoiser.Denoiser`, a guidance wrapper, an ONNX session, a lambda)."""

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor: ...


class Sampler(Protocol):
    """The one signature every sampler shares."""

    def __call__(self, denoiser: DenoiserFn, x: torch.Tensor, sigmas: torch.Tensor, *,
                 cond: torch.Tensor | None = None, callback: Callback = None,
                 generator: torch.Generator | None = None, **options) -> torch.Tensor: ...


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
def sample_euler(denoiser: DenoiserFn, x: torch.Tensor, sigmas: torch.Tensor, *,
                 cond: torch.Tensor | None = None, callback: Callback = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Euler steps on the probability-flow ODE (EDM Algorithm 1 without churn)."""
    for i in range(len(sigmas) - 1):
        denoised = _denoise(denoiser, x, sigmas[i], cond)
        x = x + to_d(x, sigmas[i], denoised) * (sigmas[i + 1] - sigmas[i])
        _notify(callback, i, x, sigmas[i], sigmas[i + 1], denoised)
    return x


@torch.no_grad()
def sample_heun(denoiser: DenoiserFn, x: torch.Tensor, sigmas: torch.Tensor, *,
                cond: torch.Tensor | None = None, callback: Callback = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
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
def sample_ddim(denoiser: DenoiserFn, x: torch.Tensor, sigmas: torch.Tensor, *,
                cond: torch.Tensor | None = None, callback: Callback = None,
                generator: torch.Generator | None = None,
                eta: float = 0.0) -> torch.Tensor:
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


def sample_ddpm(denoiser: DenoiserFn, x: torch.Tensor, sigmas: torch.Tensor, *,
                cond: torch.Tensor | None = None, callback: Callback = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """DDPM ancestral sampling: the posterior q(x_{t-1} | x_t, x0_hat), i.e. DDIM with eta = 1."""
    return sample_ddim(denoiser, x, sigmas, cond=cond, callback=callback, generator=generator, eta=1.0)


@torch.no_grad()
def sample_dpmpp_2m(denoiser: DenoiserFn, x: torch.Tensor, sigmas: torch.Tensor, *,
                    cond: torch.Tensor | None = None, callback: Callback = None,
                    generator: torch.Generator | None = None) -> torch.Tensor:
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


def _unipc_update(x, m0, m1, sigma_s, sigma_prev, sigma_t, order: int, model_t=None):
    """One UniPC (bh2, data prediction) update from sigma_s to sigma_t.

    Without ``model_t`` this is the predictor UniP; with the denoised estimate at the
    predicted point it is the corrector UniC (Zhao et al. 2023, Algorithms 1-2).
    ``m0``/``m1`` are the denoised estimates at sigma_s and the step before it.
    """
    lam_s, lam_t = -math.log(sigma_s), (math.inf if sigma_t == 0 else -math.log(sigma_t))
    h = lam_t - lam_s
    hh = -h
    h_phi_1 = math.expm1(hh)  # also B(h) for the bh2 variant
    x_t = (sigma_t / sigma_s) * x - h_phi_1 * m0
    d1 = None
    if order == 2:
        r1 = (-math.log(sigma_prev) - lam_s) / h
        d1 = (m1 - m0) / r1
    if model_t is None:
        return x_t if d1 is None else x_t - h_phi_1 * 0.5 * d1
    if d1 is None:
        return x_t - h_phi_1 * 0.5 * (model_t - m0)
    b1 = (h_phi_1 / hh - 1) / h_phi_1
    b2 = 2 * ((h_phi_1 / hh - 1) / hh - 0.5) / h_phi_1
    rho_1 = (b1 - b2) / (1 - r1)  # solve [[1, 1], [r1, 1]] @ rho = [b1, b2]
    rho_t = b1 - rho_1
    return x_t - h_phi_1 * (rho_1 * d1 + rho_t * (model_t - m0))


@torch.no_grad()
def sample_unipc(denoiser: DenoiserFn, x: torch.Tensor, sigmas: torch.Tensor, *,
                 cond: torch.Tensor | None = None, callback: Callback = None,
                 generator: torch.Generator | None = None, order: int = 2) -> torch.Tensor:
    """UniPC (Zhao et al. 2023): multistep predictor UniP + corrector UniC, bh2, data prediction.

    One NFE per step: the corrector reuses the evaluation the next predictor needs.
    The last step drops to first order, as diffusers' ``lower_order_final`` does.
    """
    sig = [float(s) for s in sigmas]
    n = len(sig) - 1
    history: list[torch.Tensor] = []
    x_prev, last_order = None, 1
    for i in range(n):
        denoised = _denoise(denoiser, x, sigmas[i], cond)
        if i > 0:  # correct the point we just evaluated, with its own estimate
            m1 = history[-2] if len(history) > 1 else None
            x = _unipc_update(x_prev, history[-1], m1, sig[i - 1], sig[i - 2] if i > 1 else None, sig[i],
                              last_order, model_t=denoised)
        history = (history + [denoised])[-2:]
        this_order = min(order, n - i, i + 1)
        x_prev = x
        x = _unipc_update(x, history[-1], history[-2] if len(history) > 1 else None, sig[i],
                          sig[i - 1] if i > 0 else None, sig[i + 1], this_order)
        last_order = this_order
        _notify(callback, i, x, sigmas[i], sigmas[i + 1], denoised)
    return x


class PIDStepSizeController:
    """Step-size control from local error estimates (as in k-diffusion's dpm_adaptive)."""

    def __init__(self, h: float, order: float, pcoeff=0.0, icoeff=1.0, dcoeff=0.0, accept_safety=0.81):
        self.h = h
        self.b1 = (pcoeff + icoeff + dcoeff) / order
        self.b2 = -(pcoeff + 2 * dcoeff) / order
        self.b3 = dcoeff / order
        self.accept_safety = accept_safety
        self.errs: list[float] = []

    def propose_step(self, error: float) -> bool:
        inv = 1 / (float(error) + 1e-8)
        if not self.errs:
            self.errs = [inv, inv, inv]
        self.errs[0] = inv
        factor = self.errs[0] ** self.b1 * self.errs[1] ** self.b2 * self.errs[2] ** self.b3
        factor = 1 + math.atan(factor - 1)  # soft limiter
        accept = factor >= self.accept_safety
        if accept:
            self.errs[2], self.errs[1] = self.errs[1], self.errs[0]
        self.h *= factor
        return accept


@torch.no_grad()
def sample_dpm_adaptive(denoiser: DenoiserFn, x: torch.Tensor, sigmas: torch.Tensor, *,
                        cond: torch.Tensor | None = None, callback: Callback = None,
                        generator: torch.Generator | None = None,
                        rtol: float = 0.05, atol: float = 0.0078, h_init: float = 0.05) -> torch.Tensor:
    """Adaptive DPM-Solver-12 (Lu et al. 2022): the 1st-order step estimates the 2nd-order step's error.

    Only ``sigmas[0]`` and the smallest non-zero sigma are used (the range to integrate);
    the tolerance sets the number of steps.  A final evaluation jumps from sigma_min to 0.
    """
    sigma_max = float(sigmas[0])
    sigma_min = float(sigmas[sigmas > 0].min())
    t, t_end = -math.log(sigma_max), -math.log(sigma_min)
    pid = PIDStepSizeController(h_init, order=2)
    x_prev, i = x, 0
    while t < t_end - 1e-5:
        t_next = min(t_end, t + pid.h)
        h, s, s_next = t_next - t, math.exp(-t), math.exp(-t_next)
        denoised = _denoise(denoiser, x, torch.tensor(s), cond)
        eps = (x - denoised) / s
        x_low = x - s_next * math.expm1(h) * eps  # DPM-Solver-1 (= DDIM)
        s_mid = math.exp(-(t + h / 2))
        u = x - s_mid * math.expm1(h / 2) * eps
        eps_mid = (u - _denoise(denoiser, u, torch.tensor(s_mid), cond)) / s_mid
        x_high = x - s_next * math.expm1(h) * eps - s_next * math.expm1(h) * (eps_mid - eps)  # DPM-Solver-2
        # Measure the error in VP scale (x / sqrt(1 + sigma^2), unit variance at every noise level), as
        # DPM-Solver does; in sigma-space |x| ~ sigma makes rtol far too loose at high noise.
        scale = (1 + s_next ** 2) ** 0.5
        delta = torch.maximum(torch.tensor(atol), rtol * torch.maximum(x_low.abs(), x_prev.abs()) / scale)
        error = torch.linalg.norm((x_low - x_high) / scale / delta) / x.numel() ** 0.5
        if pid.propose_step(error):
            x_prev, x, t = x_low, x_high, t_next
            _notify(callback, i, x, torch.tensor(s), torch.tensor(s_next), denoised)
            i += 1
    return _denoise(denoiser, x, torch.tensor(sigma_min), cond)


@torch.no_grad()
def sample_consistency(denoiser: DenoiserFn, x: torch.Tensor, sigmas: torch.Tensor, *,
                       cond: torch.Tensor | None = None, callback: Callback = None,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """Multistep consistency sampling (Song et al. 2023, Algorithm 1), for distilled students.

    Each step jumps straight to the clean estimate, then re-noises it to the next sigma with fresh
    noise.  With a consistency function one step already gives an image; more steps refine it.
    """
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, sigma, cond)
        x = denoised + sigma_next * _noise_like(x, generator) if sigma_next > 0 else denoised
        _notify(callback, i, x, sigma, sigma_next, denoised)
    return x


SAMPLERS: dict[str, tuple[Sampler, str]] = {
    "euler": (sample_euler, "Euler on the probability-flow ODE; 1 NFE/step, deterministic"),
    "heun": (sample_heun, "Heun 2nd order (EDM); 2 NFE/step except the last, deterministic"),
    "dpmpp-2m": (sample_dpmpp_2m, "DPM-Solver++(2M) multistep; 1 NFE/step, deterministic (default)"),
    "ddim": (sample_ddim, "DDIM; 1 NFE/step, eta=0 deterministic"),
    "ddpm": (sample_ddpm, "DDPM ancestral; 1 NFE/step, stochastic"),
    "unipc": (sample_unipc, "UniPC predictor-corrector (bh2, order 2); 1 NFE/step, deterministic"),
    "consistency": (sample_consistency, "multistep consistency sampling; for distilled students (diffusio distill)"),
    "adaptive": (sample_dpm_adaptive, "adaptive DPM-Solver-12; steps set by --tol (rtol), not --steps"),
}


# The samplers for a model as trained on a fixed list of sigmas: what tables and clips may use.
PLAIN_SAMPLERS = tuple(name for name in SAMPLERS if name not in ("consistency", "adaptive"))


def get_sampler(name: str) -> Sampler:
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; known: {', '.join(SAMPLERS)}")
    return SAMPLERS[name][0]
