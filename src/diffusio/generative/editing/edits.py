"""Editing with any trained model, no retraining: img2img, inversion, interpolation, inpainting, denoising.

All are small loops over the same pieces (denoiser, sigma schedule, sampler); images are float
NCHW in [-1, 1]; every random path takes a seed.

>>> from diffusio.generative import Generator
>>> gen = Generator.load("fashion")                                   # doctest: +SKIP
>>> z = invert(gen, images, steps=50)                                 # doctest: +SKIP
>>> again = reconstruct(gen, z, steps=50)                             # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from diffusio.errors import Cancelled, UsageError
from diffusio.generative.core.early_stop import CountingDenoiser
from diffusio.generative.core.guidance import CFGDenoiser
from diffusio.generative.core.samplers import get_sampler, to_d
from diffusio.generative.core.schedules import get_sigmas, get_sigmas_karras


def _guided(gen, cond, guidance):
    guidance = gen.defaults["guidance"] if guidance is None else guidance
    return CFGDenoiser(gen.denoiser, guidance) if cond is not None else gen.denoiser


def _as_tensor(images) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise UsageError(f"expected images as N x C x H x W, got shape {tuple(x.shape)}")
    return x


def _noise(shape, seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen), gen


@torch.no_grad()
def img2img(gen, images, strength: float = 0.6, *, cond=None, steps: int = 20, sampler: str = "dpmpp-2m",
            guidance: float | None = None, seed: int = 0) -> torch.Tensor:
    """SDEdit (Meng et al. 2022): noise the input to the level ``strength`` of the schedule, then denoise.

    strength 0 returns the input; strength 1 starts from pure noise and ignores it.
    """
    if not 0 <= strength <= 1:
        raise UsageError(f"--strength must be in [0, 1], got {strength}")
    x0 = _as_tensor(images)
    if strength == 0:
        return x0.clone()
    sigmas = get_sigmas("karras", steps, gen.denoiser)
    start = min(steps - 1, int(round(steps * (1 - strength))))
    sigmas = sigmas[start:]
    noise, g = _noise(x0.shape, seed)
    x = noise * sigmas[0] if strength == 1 else x0 + noise * sigmas[0]
    out = get_sampler(sampler)(_guided(gen, cond, guidance), x, sigmas, cond=cond, generator=g)
    return out.clamp(-1, 1)


@torch.no_grad()
def invert(gen, images, *, cond=None, steps: int = 50, iters: int = 3, start: float = 0.0) -> torch.Tensor:
    """Deterministic (DDIM / probability-flow ODE) inversion: from the image up to sigma_max.

    Each Euler step of ``reconstruct`` maps x_{i+1} to x_i = x_{i+1} + d(x_{i+1}) (sigma_i - sigma_{i+1});
    inverting it means solving that equation for x_{i+1}.  Plain DDIM inversion evaluates d at the
    known point instead (``iters=0``); ``iters`` fixed-point iterations solve it (Pan et al. 2023),
    so reconstruction becomes near exact at ``iters`` extra NFE per step.  Returns the latent
    divided by sigma_max (it looks like N(0, I)); unguided, since guidance breaks reversibility.
    ``start`` > 0 treats the image as already noisy at that level (noise added to it after
    generation, JPEG artefacts) and inverts from there up.
    """
    x = _as_tensor(images).clone()
    if start > 0:
        sigmas = get_sigmas_karras(steps, start, gen.denoiser.sigma_max).flip(0)[1:]  # start, ..., sigma_max
    else:
        sigmas = get_sigmas("karras", steps, gen.denoiser).flip(0)  # 0, sigma_min, ..., sigma_max
    D = gen.denoiser
    ones = x.new_ones(len(x))

    def d(point, sigma):
        return to_d(point, sigma, D(point, sigma * ones, cond))

    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        step = sigma_next - sigma
        guess = x + d(x, sigma if sigma > 0 else sigma_next) * step  # at sigma = 0, d is undefined
        for _ in range(iters):
            guess = x + d(guess, sigma_next) * step
        x = guess
    return x / sigmas[-1]


@torch.no_grad()
def reconstruct(gen, latent, *, cond=None, steps: int = 50, guidance: float = 1.0) -> torch.Tensor:
    """Run the deterministic sampler from an inverted latent back to an image."""
    z = _as_tensor(latent)
    sigmas = get_sigmas("karras", steps, gen.denoiser)
    return get_sampler("euler")(_guided(gen, cond, guidance), z * sigmas[0], sigmas, cond=cond).clamp(-1, 1)


def load_latent(path, image_shape: tuple[int, int, int]) -> np.ndarray:
    """A latent written by ``diffusio invert`` (.npy, float ``[N, C, H, W]``), checked against the
    model's image shape and for finite values (never unpickled)."""
    if not str(path).lower().endswith(".npy"):
        raise UsageError(f"latent {path} should be a .npy file written by 'diffusio invert'")
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read latent {path}: {err}; write one with 'diffusio invert'") from err
    if z.dtype.kind != "f" or z.ndim != 4 or tuple(z.shape[1:]) != tuple(image_shape):
        raise UsageError(f"latent {path} holds {z.dtype} {z.shape}; this model needs float [N, "
                         f"{', '.join(map(str, image_shape))}] from 'diffusio invert'")
    if not np.isfinite(z).all():
        raise UsageError(f"latent {path} holds NaN or infinite values; invert the image again")
    return z.astype(np.float32)


def generate_from_latent(gen, path, *, prompt: str | None = None, steps: int | None = None,
                         guidance: float | None = None) -> torch.Tensor:
    """Images in [-1, 1] reconstructed from a saved latent (``diffusio generate --latent``)."""
    z = load_latent(path, gen.model.image_shape)
    cond = gen.condition(len(z), prompt=prompt) if prompt else None
    return reconstruct(gen, z, cond=cond, steps=steps or 50, guidance=1.0 if guidance is None else guidance)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985), per row; falls back to lerp for parallel vectors."""
    a_flat, b_flat = a.flatten(1), b.flatten(1)
    cos = (a_flat * b_flat).sum(1) / (a_flat.norm(dim=1) * b_flat.norm(dim=1)).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1, 1))
    so = torch.sin(omega)
    wa = torch.where(so > 1e-6, torch.sin((1 - t) * omega) / so, torch.full_like(so, 1 - t))
    wb = torch.where(so > 1e-6, torch.sin(t * omega) / so, torch.full_like(so, t))
    shape = (-1,) + (1,) * (a.ndim - 1)
    return wa.reshape(shape) * a + wb.reshape(shape) * b


@torch.no_grad()
def interpolate(gen, image_a, image_b, frames: int = 8, *, cond_a=None, cond_b=None, steps: int = 50) -> torch.Tensor:
    """Frames between two images: slerp of their inverted latents (and of their conditions)."""
    if frames < 2:
        raise UsageError(f"--frames must be >= 2, got {frames}")
    za = invert(gen, image_a, cond=cond_a, steps=steps)
    zb = invert(gen, image_b, cond=cond_b, steps=steps)
    out = []
    for k in range(frames):
        t = k / (frames - 1)
        cond = None if cond_a is None else slerp(cond_a, cond_b, t)
        out.append(reconstruct(gen, slerp(za, zb, t), cond=cond, steps=steps))
    return torch.cat(out)


@dataclass
class Inpainting:
    """What :func:`inpaint` made: the filled images, the network evaluations it took (the class
    probe's included) and, for auto-class fills, the class indices it conditioned on and who
    named them (``"model"`` or the context classifier's dataset)."""

    images: torch.Tensor
    nfe: int
    classes: np.ndarray | None = None
    named_by: str | None = None


@torch.no_grad()
def inpaint(gen, images, mask, *, cond=None, steps: int = 25, resample: int | None = None,
            guidance: float | None = None, seed: int = 0, auto_class: bool = False, classifier="auto",
            recon: float = 0.0, should_stop=None) -> Inpainting:
    """RePaint-style inpainting (Lugmayr et al. 2022) with ancestral steps.

    ``mask`` is 1 where pixels are to be generated. At every step the known region is replaced by
    the input noised to the current level; each step is repeated ``resample`` times (re-noising
    back up) so the generated part agrees with its surroundings (default 4; 1 with ``recon``).
    Returns an :class:`Inpainting`; the NFE cost is ``steps * resample``. Pixels outside the mask
    are copied exactly.

    ``auto_class`` (without ``cond``): first find the class the visible pixels show
    (:func:`infer_class`) and condition on it at guidance 2, so prompt-free fills keep the
    garment's class. ``classifier`` names that class (see :func:`class_source`): by default the
    shipped context classifier of the model's data (no NFE); with ``"model"``, or when there is
    none, the model is its own classifier (80 more NFE for 10 classes, and it is right less often:
    docs/benchmarks.md).

    ``recon`` > 0 adds reconstruction guidance (Ho et al. 2022): each clean estimate is pushed, on
    the masked part, along the gradient that makes its kept part match the input, with step
    ``recon`` per unit of that mismatch.  It needs no classes and costs a backward pass per
    evaluation (a 25-step fill took 1.7x as long).  At 30 with ``resample=1`` it lifted class-free
    fills of half-masked test images from 59% to 73.5% recognised (docs/benchmarks.md).
    """
    extra_nfe, classes, named_by = 0, None, None
    if auto_class and cond is None:
        namer = class_source(gen, str(classifier)) if isinstance(classifier, (str, Path)) else classifier
        classes, cond, extra_nfe = class_condition(gen, images, mask, classifier=namer, seed=seed)
        named_by = "model" if namer is None else namer.dataset
        guidance = AUTO_CLASS_GUIDANCE if guidance is None else guidance
    x0 = _as_tensor(images)
    m = torch.as_tensor(np.asarray(mask, dtype=np.float32))
    m = m.reshape((1,) * (4 - m.ndim) + tuple(m.shape)).expand_as(x0)
    if not ((m == 0) | (m == 1)).all():
        raise UsageError("mask must be 0 (keep) or 1 (fill)")
    if resample is None:
        resample = 1 if recon > 0 else 4  # reconstruction guidance does the agreeing itself
    if resample < 1:
        raise UsageError(f"--resample must be >= 1, got {resample}")
    if not 0 <= recon < float("inf"):
        raise UsageError(f"--recon must be a finite number >= 0, got {recon}")
    model = CountingDenoiser(_guided(gen, cond, guidance))
    sigmas = get_sigmas("karras", steps, gen.denoiser)
    noise, g = _noise(x0.shape, seed)
    x = noise * sigmas[0]
    for i in range(steps):
        if should_stop is not None and should_stop():
            raise Cancelled("inpainting stopped: the caller's time limit was reached")
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        for r in range(resample):
            known = x0 + torch.randn(x0.shape, generator=g) * sigma
            x = m * x + (1 - m) * known
            denoised = (reconstruction_guided(model, x, sigma, cond, x0, m, recon) if recon > 0
                        else model(x, sigma * x.new_ones(len(x)), cond))
            # DDPM ancestral step sigma -> sigma_next
            up = 0.0 if sigma_next == 0 else math.sqrt(float(sigma_next ** 2 * (sigma ** 2 - sigma_next ** 2) / sigma ** 2))
            down = math.sqrt(max(float(sigma_next) ** 2 - up ** 2, 0.0))
            x_next = denoised + to_d(x, sigma, denoised) * down + torch.randn(x.shape, generator=g) * up
            if r < resample - 1 and sigma_next > 0:  # jump back up and redo the step
                x = x_next + torch.randn(x.shape, generator=g) * math.sqrt(float(sigma ** 2 - sigma_next ** 2))
            else:
                x = x_next
    out = m * x.clamp(-1, 1) + (1 - m) * x0
    return Inpainting(out, model.nfe + extra_nfe, classes, named_by)


def reconstruction_guided(model, x, sigma, cond, x0, mask, weight: float) -> torch.Tensor:
    """The clean estimate D(x), moved on the masked part against the gradient of the kept part's
    mismatch |(1 - mask)(D(x) - x0)|, by ``weight`` (reconstruction guidance, Ho et al. 2022)."""
    with torch.inference_mode(False), torch.enable_grad():
        xg = x.detach().clone().requires_grad_(True)
        denoised = model(xg, sigma * xg.new_ones(len(xg)), cond)
        mismatch = ((denoised - x0) * (1 - mask)).flatten(1).norm(dim=1)
        grad, = torch.autograd.grad(mismatch.sum(), xg)  # d|r|/dx = grad |r|^2 / (2 |r|): DPS-style step size
    return (denoised - weight * 2 * grad * mask).detach()


# auto-class inpainting: noise levels and draws of the class probe, and the guidance of the fill
PROBE_SIGMAS, PROBE_DRAWS, AUTO_CLASS_GUIDANCE = (0.3, 0.6, 1.2, 2.5), 2, 2.0  # 8 draws: 4x the NFE, no gain (docs)


def class_condition(gen, images, mask, *, classifier="auto", seed: int = 0) -> tuple[np.ndarray, torch.Tensor, int]:
    """(labels, their class conditions, the NFE it took) for the classes the visible pixels show
    (:func:`infer_class` at the settings of auto-class inpainting); ``classifier``: a
    :class:`~diffusio.generative.evaluation.classifier.Classifier`, or a source for :func:`class_source`."""
    if isinstance(classifier, (str, Path)):
        classifier = class_source(gen, str(classifier))
    labels = infer_class(gen, images, mask, classifier=classifier, sigmas=PROBE_SIGMAS, draws=PROBE_DRAWS, seed=seed)
    nfe = 0 if classifier is not None else len(PROBE_SIGMAS) * PROBE_DRAWS * len(gen.model.class_embeddings)
    return labels, gen.model.class_embeddings[labels].float(), nfe


@torch.no_grad()
def infer_class(gen, images, mask, *, classifier=None, sigmas=(0.3, 0.6, 1.2, 2.5), draws: int = 2,
                seed: int = 0) -> np.ndarray:
    """The class the visible pixels (mask 0) show, per image, as an index into the model's classes.

    With a ``classifier`` (best a context classifier, trained with parts hidden), its prediction
    from the visible pixels. Without, the model is its own classifier: for each class, the
    denoising error on the kept pixels at a few noise levels, with the same noise for every class
    (a diffusion classifier, as in Li et al. 2023); the class with the smallest error wins. Needs a
    model trained with classes.
    """
    bank = gen.model.class_embeddings
    if bank is None:
        raise UsageError("--auto-class needs a model trained with classes")
    if classifier is not None:
        if list(classifier.class_names) != list(gen.class_names):
            raise UsageError(f"the classifier's classes ({classifier.class_names}) are not the model's "
                             f"({gen.class_names}); use a classifier trained on the model's data")
        return classifier.predict_visible(_as_tensor(images).numpy(), np.asarray(mask, dtype=np.float32))
    x0 = _as_tensor(images)
    keep = 1 - torch.as_tensor(np.asarray(mask, dtype=np.float32)).reshape((1, 1) + np.shape(mask)[-2:])
    g = torch.Generator().manual_seed(seed)
    errors = torch.zeros(len(x0), len(bank))
    for sigma in sigmas:
        for _ in range(draws):
            x = x0 * keep + torch.randn(x0.shape, generator=g) * sigma
            for c in range(len(bank)):
                cond = bank[c].float().expand(len(x0), -1)
                d = gen.denoiser(x, torch.full((len(x0),), float(sigma)), cond)
                errors[:, c] += (((d - x0) * keep) ** 2).flatten(1).sum(1)
    return errors.argmin(1).numpy()


def class_source(gen, source: str = "auto"):
    """Who names the class of a prompt-free fill: ``auto`` (the shipped context classifier of the
    model's training data, when there is one, else the model itself), ``model`` (the model itself:
    returns None), or the folder of a classifier from ``diffusio classifier --context``."""
    from diffusio.generative.evaluation.classifier import context_classifier, load_classifier

    if source == "model":
        return None
    if source == "auto":
        data = gen.model.config.get("data", {}).get("name")
        return context_classifier(data) if data else None
    if not Path(source).is_dir():
        raise UsageError(f"--class-from takes auto, model or the folder of a classifier; {source!r} is none of these")
    return load_classifier(source)


def uncensor(noisy: torch.Tensor, sigma: float) -> torch.Tensor:
    """Noisy images as the denoiser expects them: a pixel read from a file was clipped to [-1, 1],
    so one at an end of the range stands for any value beyond it.  Each such pixel is put at the
    mean of the Gaussian noise cut at that end, taking the pixel underneath to be at the end
    (``-1 - sigma sqrt(2 / pi)`` at black, ``1 + sigma sqrt(2 / pi)`` at white), where a denoiser
    trained on unclipped noise reads it right.  On a black canvas about half the background pixels
    are clipped at black and the other half keep their noise: the clipped noise has mean
    ``0.4 sigma``, which a denoiser takes for a faint object (docs/benchmarks-video.md, "Clipped
    noise").  Pixels inside the range, and beyond it (noise that was not clipped), are untouched.

    >>> uncensor(torch.tensor([-1.0, -0.5, 1.0]), 0.2).tolist()  # doctest: +ELLIPSIS
    [-1.159..., -0.5, 1.159...]
    """
    beyond = sigma * math.sqrt(2 / math.pi)
    out = torch.where(noisy == -1, torch.full_like(noisy, -1 - beyond), noisy)
    return torch.where(noisy == 1, torch.full_like(noisy, 1 + beyond), out)


def estimate_noise_sigma(images) -> float:
    """Gaussian noise level (in [-1, 1] units) by Immerkaer's (1996) Laplacian-difference estimator,
    over the windows that are not on an edge (:func:`_immerkaer`).

    Noise saved in a file was clipped to the range, which hides much of it: on a black canvas the
    plain estimate is 35-40 % low.  So pixels at an end of the range are redrawn from the noise cut
    at that end, at the current estimate, and the estimate taken again until it settles (a few
    rounds of stochastic EM with a fixed seed; docs/benchmarks-video.md, "Clipped noise").
    """
    x = _as_tensor(images).double()
    sigma = _immerkaer(x)
    low, high = x == -1, x == 1
    if not (low.any() or high.any()):
        return sigma
    cut = torch.randn(x.shape, generator=torch.Generator().manual_seed(0), dtype=x.dtype).abs()
    for _ in range(30):
        redrawn = torch.where(low, -1 - sigma * cut, torch.where(high, 1 + sigma * cut, x))
        sigma, before = _immerkaer(redrawn), sigma
        if abs(sigma - before) <= 1e-4 * before:
            break
    return sigma


EDGE_SHARE = 0.5  # the windows with the steepest gradient, left out of the noise estimate (0.2 read texture as noise)


def _immerkaer(x: torch.Tensor) -> float:
    """Immerkaer's estimate over the windows that are not on an edge (as Tai and Yang 2008, who
    leave out the tenth with the largest Sobel gradient; here half, since a garment's texture
    also reads as noise).  White noise's Sobel and Laplacian responses are uncorrelated, so
    leaving out its steepest windows does not bias the estimate of noise itself (tested)."""
    c = x.shape[1]
    conv = lambda k: torch.nn.functional.conv2d(x, k.expand(c, 1, 3, 3), groups=c)  # noqa: E731
    laplace = conv(torch.tensor([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=x.dtype)[None, None]).abs()
    sobel = torch.tensor([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=x.dtype)[None, None]
    gradient = (conv(sobel).abs() + conv(sobel.transpose(2, 3)).abs()).flatten()
    flat = gradient.kthvalue(max(1, math.ceil((1 - EDGE_SHARE) * len(gradient)))).values
    keep = gradient <= flat
    return float(math.sqrt(math.pi / 2) * laplace.flatten()[keep].sum() / (6 * keep.sum()))


@torch.no_grad()
def denoise(gen, noisy, sigma: float | None = None, *, method: str = "mmse", steps: int = 10,
            sampler: str = "dpmpp-2m") -> torch.Tensor:
    """Remove Gaussian noise of std ``sigma`` ([-1, 1] units; estimated when None); unconditional.

    ``mmse``: one denoiser call at that noise level, the posterior mean E[x0 | y] (Tweedie), which
    maximises PSNR; ``ode``: run the reverse process from that level (sharper, lower PSNR).
    """
    if method not in ("mmse", "ode"):
        raise UsageError(f"unknown denoise method {method!r}; use mmse or ode")
    y = _as_tensor(noisy)
    sigma = estimate_noise_sigma(y) if sigma is None else float(sigma)
    if sigma <= 0:
        return y.clone()
    sigma = min(sigma, gen.denoiser.sigma_max)
    y = uncensor(y, sigma)
    if method == "mmse":
        return gen.denoiser(y, sigma * y.new_ones(len(y)), None).clamp(-1, 1)
    from diffusio.generative.core.schedules import get_sigmas_karras

    sigmas = get_sigmas_karras(steps, gen.denoiser.sigma_min, sigma)
    return get_sampler(sampler)(gen.denoiser, y, sigmas).clamp(-1, 1)
