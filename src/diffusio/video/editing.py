"""Enhance existing clips with a video model: remove noise, fill missing frames, continue a clip.

* ``denoise``: one call of the denoiser at the clip's noise level is the posterior mean E[x0 | y]
  (Tweedie), the estimate with the best PSNR; the space-time model uses every frame to clean each.
  ``per_frame=True`` runs the same network on single frames (its image mode): the comparison that
  shows what time adds.
* ``fill``: the missing frames are sampled while the known ones are held to the truth: the
  :class:`KnownFrames` denoiser wrapper returns the given frames as its clean estimate for them, so
  a deterministic sampler keeps them at ``truth + sigma * noise`` at every level and the model
  generates the rest consistently with both ends (the replacement method of Ho et al. 2022, with
  ``resample`` rounds of RePaint's re-noising, Lugmayr et al. 2022).  The given frames come back
  exactly.  With ``strength`` < 1 (the default, 0.45) the missing frames start instead from the
  linear blend of the nearest given frames, noised to that point of the schedule (SDEdit, Meng et
  al. 2022, as ``img2img`` does for images): the model then turns the blend's double exposure
  into one moving object.  ``strength=1`` samples them from pure noise.
* ``extend``: ``fill`` on a window whose first frames are the clip's last ones, repeated until the
  clip is long enough.

Clips are uint8 (T, H, W, C) arrays, or (N, T, H, W, C) batches.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from diffusio.errors import UsageError
from diffusio.generative.core.samplers import ancestral_step, to_d
from diffusio.generative.editing.edits import estimate_noise_sigma, reconstruction_guided, uncensor
from diffusio.video.consistency import ConsistentDenoiser
from diffusio.video.generator import MAX_FRAMES, VideoGenerator, check_count, to_pixels, to_tensor


DEFAULT_FILL_STRENGTH = 0.45  # chosen on held-out clips: docs/benchmarks-video.md


class KnownFrames(nn.Module):
    """A denoiser whose clean estimate of the ``known`` frames (a bool per frame) is ``x0`` itself;
    ``recon`` > 0 also pushes its estimate of the other frames toward agreeing with them
    (reconstruction guidance)."""

    def __init__(self, denoiser: nn.Module, x0: torch.Tensor, known: torch.Tensor, recon: float = 0.0):
        super().__init__()
        self.inner, self.x0, self.recon = denoiser, x0, float(recon)
        self.known = known.reshape(1, 1, -1, 1, 1)
        self.sigma_min, self.sigma_max = denoiser.sigma_min, denoiser.sigma_max

    def forward(self, x, sigma, cond=None):
        if self.recon > 0:
            missing = (~self.known).float().expand_as(self.x0)
            denoised = reconstruction_guided(self.inner, x, sigma, cond, self.x0, missing, self.recon)
        else:
            denoised = self.inner(x, sigma, cond)
        return torch.where(self.known, self.x0, denoised)


def check_clip(gen: VideoGenerator, clip: np.ndarray) -> np.ndarray:
    """A uint8 clip (T, H, W, C) or batch (N, T, H, W, C) of the model's frame size and channels."""
    clip = np.asarray(clip)
    batch = clip if clip.ndim == 5 else clip[None]
    if clip.dtype != np.uint8 or batch.ndim != 5:
        raise UsageError(f"a clip must be uint8 (frames, height, width, channels), got {clip.dtype} {clip.shape}")
    _, t, h, w, c = batch.shape
    if t < 1:
        raise UsageError("the clip has no frames")
    if (h, w, c) != (gen.size, gen.size, gen.channels):
        raise UsageError(f"the clip's frames are {h}x{w} with {c} channel(s); the model makes {gen.size}x{gen.size} "
                         f"with {gen.channels}: resize it first (diffusio.video.io.resize_clip)")
    return batch


@torch.no_grad()
def denoise(gen: VideoGenerator, clip: np.ndarray, sigma: float | None = None, *, per_frame: bool = False,
            prompt: str | None = None, consistency: float | None = None) -> np.ndarray:
    """Remove Gaussian noise of std ``sigma`` (in [-1, 1] units, i.e. pixels / 127.5; estimated from
    the clip when None).  ``per_frame``: each frame on its own (the image denoiser).
    ``consistency``: how far the estimate moves toward one look of the object in every frame
    (:mod:`diffusio.video.consistency`; default: the model's ``denoise_consistency``, else its
    ``consistency``); not used frame by frame.  Pixels at black or white are read as clipped noise
    (:func:`~diffusio.generative.editing.edits.uncensor`)."""
    batch, single = check_clip(gen, clip), np.ndim(clip) == 4
    consistency = gen.consistency(consistency, denoising=True)
    y = to_tensor(batch)
    n, c, t, h, w = y.shape
    if sigma is None:
        sigma = clip_noise_sigma(batch)
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma >= 0):
        raise UsageError(f"sigma must be a noise level >= 0, got {sigma!r}")
    if sigma == 0:
        return np.array(clip, copy=True)
    sigma = min(float(sigma), gen.denoiser.sigma_max)
    y = uncensor(y, sigma)
    cond = gen.embed([prompt] * n)
    if per_frame:
        frames = y.transpose(1, 2).reshape(n * t, c, 1, h, w)
        frame_cond = None if cond is None else cond.repeat_interleave(t, dim=0)
        out = gen.denoiser(frames, torch.full((n * t,), sigma), frame_cond)
        out = out.reshape(n, t, c, h, w).transpose(1, 2)
    else:
        model = ConsistentDenoiser(gen.denoiser, consistency) if consistency else gen.denoiser
        out = model(y, torch.full((n,), sigma), cond)
    pixels = to_pixels(out.clamp(-1, 1))
    return pixels[0] if single else pixels


def clip_noise_sigma(clip: np.ndarray) -> float:
    """The noise std of a clip (T, H, W, C) or clips (N, T, H, W, C) of uint8, in pixels / 127.5,
    from all their frames (:func:`~diffusio.generative.editing.edits.estimate_noise_sigma`)."""
    y = to_tensor(np.asarray(clip)[None] if np.ndim(clip) == 4 else np.asarray(clip))
    n, c, t, h, w = y.shape
    return estimate_noise_sigma(y.transpose(1, 2).reshape(n * t, c, h, w))


@torch.no_grad()
def fill(gen: VideoGenerator, clip: np.ndarray, missing, *, prompt: str | None = None, steps: int | None = None,
         guidance: float | None = None, resample: int = 2, recon: float = 0.0,
         strength: float = DEFAULT_FILL_STRENGTH, seed: int = 0) -> np.ndarray:
    """The clip with frames ``missing`` (indices from 0, e.g. ``range(5, 10)``) generated to agree
    with the frames around them; every other frame is returned unchanged.  ``recon`` > 0 adds
    reconstruction guidance (Ho et al. 2022) of that weight: each clean estimate is pushed so that
    its known frames match the clip (one backward pass per step).  ``strength`` in (0, 1]: 1
    samples the missing frames from pure noise; lower starts from the linear blend of the nearest
    given frames, noised to that share of the schedule (fewer steps, closer to the blend; the
    default 0.45 beats the blend itself in PSNR and SSIM, docs/benchmarks-video.md)."""
    batch, single = check_clip(gen, clip), np.ndim(clip) == 4
    t = batch.shape[1]
    check_count("the clip's frame count", t, MAX_FRAMES)
    known = torch.ones(t, dtype=torch.bool)
    idx = _frame_indices(missing, t)
    known[idx] = False
    if known.all():
        raise UsageError("no frame to fill: give frames inside the clip")
    if not known.any():
        raise UsageError("every frame is missing: there is nothing to fill from; use `video generate` instead")
    check_count("resample", resample)
    if not (isinstance(recon, (int, float)) and math.isfinite(recon) and recon >= 0):
        raise UsageError(f"recon must be a finite weight >= 0, got {recon!r}")
    if not (isinstance(strength, (int, float)) and 0 < strength <= 1):
        raise UsageError(f"strength must be in (0, 1] (1: from pure noise), got {strength!r}")
    x0 = to_tensor(batch)
    start = None if strength == 1 else to_tensor(np.stack([blend_frames(c, idx) for c in batch]))
    out = _sample_with_known(gen, x0, known, prompt, steps, guidance, resample, recon, seed, start, strength)
    pixels = to_pixels(out)
    pixels[:, known.numpy()] = batch[:, known.numpy()]  # exactly what was given
    return pixels[0] if single else pixels


def _frame_indices(missing, t: int) -> list[int]:
    try:
        idx = sorted({int(i) for i in missing})
    except (TypeError, ValueError):
        raise UsageError(f"missing must be frame indices, got {missing!r}") from None
    bad = [i for i in idx if not 0 <= i < t]
    if bad:
        raise UsageError(f"frame {bad[0] + 1} is outside the clip, which has {t} frames (1-{t})")
    return idx


def blend_frames(clip: np.ndarray, missing) -> np.ndarray:
    """The classical way to fill frames: each missing frame is the linear blend of the nearest
    given frames before and after it (the nearest one alone at either end of the clip)."""
    out = np.asarray(clip).astype(np.float64).copy()
    t = out.shape[0]
    known = [i for i in range(t) if i not in set(missing)]
    for i in missing:
        before = max((k for k in known if k < i), default=None)
        after = min((k for k in known if k > i), default=None)
        if before is None or after is None:
            out[i] = out[after if before is None else before]
        else:
            w = (i - before) / (after - before)
            out[i] = (1 - w) * out[before] + w * out[after]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _sample_with_known(gen, x0, known, prompt, steps, guidance, resample, recon, seed, start=None,
                       strength=1.0) -> torch.Tensor:
    """Ancestral sampling of the unknown frames with the known ones held to ``x0``; each step is
    redone ``resample`` times after re-noising back up, so the two parts agree (RePaint).  With
    ``start`` (a clip) the sampling begins from it, noised to the ``strength`` point of the schedule."""
    n = x0.shape[0]
    cond = gen.embed([prompt] * n)
    model = KnownFrames(gen.guided(guidance) if cond is not None else gen.denoiser, x0, known, recon)
    sigmas = gen.sigmas(steps)
    sigmas = sigmas[min(len(sigmas) - 2, int(round((len(sigmas) - 1) * (1 - strength)))):]
    g = torch.Generator().manual_seed(int(seed))
    x = torch.randn(x0.shape, generator=g) * sigmas[0] + (0 if start is None else start)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        for r in range(resample):
            denoised = model(x, sigma * x.new_ones(n), cond)
            down, up = ancestral_step(sigma, sigma_next)
            x_next = denoised + to_d(x, sigma, denoised) * down + torch.randn(x.shape, generator=g) * up
            if r < resample - 1 and sigma_next > 0:
                x = x_next + torch.randn(x.shape, generator=g) * math.sqrt(float(sigma ** 2 - sigma_next ** 2))
            else:
                x = x_next
    return x.clamp(-1, 1)


@torch.no_grad()
def extend(gen: VideoGenerator, clip: np.ndarray, frames: int, *, prompt: str | None = None,
           steps: int | None = None, guidance: float | None = None, resample: int = 2, recon: float = 0.0,
           seed: int = 0) -> np.ndarray:
    """The clip followed by ``frames`` new frames that continue it.  Each round fills a window of
    the model's length whose first half is the clip's latest frames."""
    batch, single = check_clip(gen, clip), np.ndim(clip) == 4
    check_count("frames", frames, 16 * MAX_FRAMES)
    window = gen.frames
    context = max(1, window // 2)
    out = batch
    rnd = 0
    while out.shape[1] < batch.shape[1] + frames:
        tail = out[:, -context:]
        new = min(window - tail.shape[1], batch.shape[1] + frames - out.shape[1])
        padded = np.concatenate([tail, np.zeros((len(out), new) + out.shape[2:], dtype=np.uint8)], axis=1)
        # from pure noise: with nothing after the new frames, a blend would only repeat the last one
        filled = fill(gen, padded, range(tail.shape[1], tail.shape[1] + new), prompt=prompt, steps=steps,
                      guidance=guidance, resample=resample, recon=recon, strength=1.0, seed=seed + rnd)
        out = np.concatenate([out, filled[:, tail.shape[1]:]], axis=1)
        rnd += 1
    return out[0] if single else out
