"""The losses a denoiser is trained with, the EMA of its weights, and the optimizer state as flat
tensors (for safetensors checkpoints)."""

from __future__ import annotations

import torch

from diffusio.generative.core.denoiser import EDMDenoiser, expand_rows

def _rows(part: slice, *tensors):
    return [None if t is None else t[part] for t in tensors]


EDM_P_MEAN = -1.2  # EDM's mean log sigma of training noise, chosen for images (Karras et al. 2022)

def edm_loss(denoiser: EDMDenoiser, x0, cond, gen, p_mean: float = EDM_P_MEAN, p_std: float = 1.2,
             part: slice = slice(None)):
    """EDM loss: log-normal sigma, weighted so every noise level has unit-variance targets.

    Noise is drawn for the whole batch and the loss taken on rows ``part`` (this rank's shard), so
    every process of a distributed run sees the same random stream as a single process would.
    ``gen`` is a CPU generator on any device, so a GPU run draws the same noise as a CPU run.
    ``denoiser`` may be wrapped in DistributedDataParallel.
    """
    n = x0.shape[0]
    sigma = (torch.randn(n, generator=gen) * p_std + p_mean).exp().to(x0.device)
    noise = torch.randn(x0.shape, generator=gen).to(x0.device)
    x0, cond, sigma, noise = _rows(part, x0, cond, sigma, noise)
    denoised = denoiser(x0 + expand_rows(sigma, x0) * noise, sigma, cond)
    weight = expand_rows(getattr(denoiser, "module", denoiser).loss_weight(sigma), x0)
    return (weight * (denoised - x0) ** 2).mean()


def vp_loss(denoiser, x0, cond, gen, part: slice = slice(None)):
    """DDPM's simple loss: eps-prediction MSE at a uniformly drawn training timestep."""
    train_sigmas = getattr(denoiser, "module", denoiser).train_sigmas
    t = torch.randint(0, len(train_sigmas), (x0.shape[0],), generator=gen)
    sigma = train_sigmas[t.to(train_sigmas.device)].float()
    noise = torch.randn(x0.shape, generator=gen).to(x0.device)
    x0, cond, sigma, noise = _rows(part, x0, cond, sigma, noise)
    s = expand_rows(sigma, x0)
    x = x0 + s * noise
    eps_hat = (x - denoiser(x, sigma, cond)) / s
    return ((eps_hat - noise) ** 2).mean()


LOSSES = {"edm": edm_loss, "vp": vp_loss}


@torch.no_grad()
def ema_update(ema: torch.nn.Module, net: torch.nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), net.parameters()):
        e.lerp_(p, 1 - decay)
    for e, b in zip(ema.buffers(), net.buffers()):
        e.copy_(b)


def optimizer_tensors(opt: torch.optim.Optimizer, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Adam's per-parameter state as flat tensors (``opt.<param index>.<name>``) for safetensors."""
    out = {}
    for i, p in enumerate(module.parameters()):
        for name, value in opt.state.get(p, {}).items():
            out[f"opt.{i}.{name}"] = torch.as_tensor(value).reshape(-1) if name == "step" else value
    return out


def restore_optimizer(opt: torch.optim.Optimizer, module: torch.nn.Module, tensors: dict) -> None:
    """Inverse of :func:`optimizer_tensors`."""
    for i, p in enumerate(module.parameters()):
        keys = {k.split(".", 2)[2]: v.to(p.device) for k, v in tensors.items() if k.startswith(f"opt.{i}.")}
        if keys:
            keys["step"] = keys["step"].reshape(()).cpu()  # Adam keeps its step count on the CPU
            opt.state[p] = keys


def ema_decay_at(step: int, decay: float) -> float:
    """Warm the EMA up so early checkpoints are not dominated by the random init."""
    return min(decay, (1 + step) / (10 + step))


