"""The checks of a TableDiffusion's settings: each bad value is a UsageError that names it."""

from __future__ import annotations

import math

import numpy as np

from diffusio._precision import use_bf16
from diffusio.errors import UsageError
from diffusio.generative.conditioning.class_guide import check_redraws
from diffusio.generative.core.guidance import check_interval, check_scale
from diffusio.generative.core.samplers import PLAIN_SAMPLERS
from diffusio.generative.training.schedule import check_cooldown


def check_settings(model) -> None:
    """Check every setting of ``model`` (a TableDiffusion) and normalise its guidance interval."""
    for name in ("steps", "width", "depth", "batch_size", "sample_steps", "every"):
        value = getattr(model, name)
        if name == "steps" and value is None:
            continue
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise UsageError(f"{name} must be a positive whole number, got {value!r}")
    if model.minutes is not None and not (isinstance(model.minutes, (int, float)) and model.minutes > 0):
        raise UsageError(f"minutes must be a positive number of minutes, got {model.minutes!r}")
    if not (isinstance(model.lr, (int, float)) and 0 < model.lr < 1):
        raise UsageError(f"lr must be in (0, 1), got {model.lr!r}")
    check_cooldown(model.cooldown, "cooldown", "steps")
    for name in ("p_mean", "p_std"):
        value = getattr(model, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise UsageError(f"{name} must be a finite number, got {value!r}")
    if model.p_std <= 0:
        raise UsageError(f"p_std must be above 0 (the spread of log sigma in training), got {model.p_std!r}")
    if not 0 <= model.cond_dropout < 1:
        raise UsageError(f"cond_dropout must be in [0, 1), got {model.cond_dropout!r}")
    for name in ("mix", "mix_threshold"):
        value = getattr(model, name)
        if name == "mix" and value is None:
            continue
        if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1):
            raise UsageError(f"{name} must be in [0, 1], got {value!r}")
    check_seed(model.seed, "seed")
    check_redraws(model.redraws)
    if model.redraw_below is not None:
        check_bar(model.redraw_below)
    check_scale(model.guidance)
    model.guidance_interval = every_level_is_none(check_interval(model.guidance_interval))
    use_bf16(model.bf16)
    if not 0 <= model.ema_decay < 1:
        raise UsageError(f"ema_decay must be in [0, 1), got {model.ema_decay!r}")
    if model.sampler not in PLAIN_SAMPLERS:
        raise UsageError(f"sampler must be one of {', '.join(PLAIN_SAMPLERS)}; got {model.sampler!r}")


MAX_SEED = 2 ** 32 - 1  # numpy's, scikit-learn's and torch's seeds all take it


def check_seed(seed: object, name: str) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise UsageError(f"{name} must be a whole number in [0, {MAX_SEED}], got {seed!r}")
    return int(seed)


def check_bar(bar: object) -> float:
    if isinstance(bar, bool) or not isinstance(bar, (int, float, np.floating)) or not 0 <= bar <= 1:
        raise UsageError(f"redraw_below must be a probability in [0, 1], got {bar!r}")
    return float(bar)


def every_level_is_none(interval: tuple[float, float] | None) -> tuple[float, float] | None:
    """``(0, inf)`` (the CLI's ``all``) guides at every level, as None does; None keeps config.json
    standard JSON (no ``Infinity``)."""
    return None if interval is not None and interval[0] == 0 and math.isinf(interval[1]) else interval
