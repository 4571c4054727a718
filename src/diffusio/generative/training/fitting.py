"""The fit machinery shared by the small models built on the image stack (tables, molecules):
progress, one optimiser step with its EMA, and a resumable state that only the same settings may
continue.  The image trainer keeps its own (it adds torchrun and devices); the pieces underneath --
``loop.run_loop``, ``losses.ema_update``, ``checkpoint.files`` -- are the same."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from diffusio.errors import UsageError
from diffusio.generative.checkpoint import files as ckpt
from diffusio.generative.training.losses import ema_decay_at, ema_update, optimizer_tensors, restore_optimizer

# settings a resumed run may change: how long it runs, when its learning rate cools down (a run at a
# constant rate may be annealed later: that is the point of warmup-stable-decay) and how it samples
FREE_SETTINGS = ("steps", "minutes", "every", "cooldown", "guidance", "guidance_interval", "sample_steps", "sampler")


@dataclass
class Progress:
    """What ``loop.run_loop`` advances: steps done, loss history, wall seconds."""

    step: int = 0
    losses: list[float] = field(default_factory=list)
    wall: float = 0.0


def optimiser_step(loss: torch.Tensor, opt: torch.optim.Optimizer, net: torch.nn.Module, ema: torch.nn.Module,
                   progress: Progress, ema_decay: float, clip: float | None = None) -> float:
    """Backward, (clip), step, EMA update, count the step; returns the loss as a number."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
    opt.step()
    ema_update(ema, net, ema_decay_at(progress.step, ema_decay))
    progress.step += 1
    return loss.item()


def check_run_folder(out: str | Path, resume: bool) -> Path:
    """``out`` may receive a new run (it holds no model) or, with ``resume``, continue one."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"out {out} is a file; give a folder for the run")
    if not resume and (out / "config.json").exists():
        raise UsageError(f"out {out} already holds a model; add --resume to continue it, or choose another --out")
    if resume and not (out / ckpt.STATE_JSON).exists():
        raise UsageError(f"resume: {out} holds no training state to continue; start without --resume first")
    return out


def check_same_init(out: Path, init: str | Path | None) -> dict | None:
    """A run resumes the way it began: from the same parent model (``init``, recorded in its
    config), or from scratch.  Returns the parent as recorded when the run began, which the resumed
    run keeps: the model under that name may have changed since (a shipped name replaced by this
    very run's checkpoint), and its step count would then misstate the lineage."""
    started = ckpt.read_run_meta(out).get("model", {}).get("init")
    if (started or {}).get("model") != (None if init is None else str(init)):
        began = f"from {started['model']}" if started else "from scratch"
        given = f"init={init}" if init is not None else "no init"
        fix = f"with init={started['model']} (--init)" if started else "without init"
        raise UsageError(f"resume: {out} started {began}, but {given} was given; resume it {fix}")
    return started


def save_fit_state(out: Path, progress: Progress, net: torch.nn.Module, ema: torch.nn.Module,
                   opt: torch.optim.Optimizer, gen: torch.Generator, config: dict) -> None:
    tensors = {f"train.{k}": v for k, v in net.state_dict().items()}
    tensors.update({f"ema.{k}": v for k, v in ema.state_dict().items()})
    tensors.update(optimizer_tensors(opt, net))
    tensors["rng.data"] = gen.get_state()
    ckpt.save_run_state(out, progress.step, tensors, {"losses": progress.losses, "wall_seconds": progress.wall,
                                                      "model": config})


def load_fit_state(out: Path, net: torch.nn.Module, ema: torch.nn.Module, opt: torch.optim.Optimizer,
                   gen: torch.Generator, config: dict, same_data: Callable[[dict], bool]) -> Progress:
    """Restore a run saved by :func:`save_fit_state` into the given modules, after checking that it
    was made from the same data (``same_data(saved config)``) and with the same settings
    (``config["settings"]`` less :data:`FREE_SETTINGS`)."""
    meta, tensors = ckpt.load_run_state(out)
    if not same_data(meta.get("model", {})):
        raise UsageError(f"resume: {out} was trained on other data; use the same data, or a new out folder")
    fixed = lambda s: {k: v for k, v in (s or {}).items() if k not in FREE_SETTINGS}  # noqa: E731
    saved, mine = fixed(meta.get("model", {}).get("settings")), fixed(config["settings"])
    if saved != mine:
        changed = sorted(k for k in set(saved) | set(mine) if saved.get(k) != mine.get(k))
        raise UsageError(f"resume: {out} was trained with other settings ({', '.join(changed)}); use the same ones")
    ckpt.load_state_into(net, tensors, "train.", out)
    ckpt.load_state_into(ema, tensors, "ema.", out)
    restore_optimizer(opt, net, tensors)
    gen.set_state(tensors["rng.data"])
    return Progress(int(meta["step"]), list(meta.get("losses", [])), float(meta.get("wall_seconds", 0.0)))
