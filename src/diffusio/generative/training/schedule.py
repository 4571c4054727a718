"""The learning-rate schedule: linear warm-up, a constant stretch, then an optional linear cool-down.

Warmup-stable-decay (Hägele et al., 2024, "Scaling Laws and Compute-Optimal Training beyond Fixed
Training Durations"): a constant rate lets a run be continued at any time, and a short linear decay to
zero at the end gives most of what a cosine schedule would, without fixing the length in advance.

>>> [round(learning_rate(s, 1e-3, warmup=2, total=10, cooldown=0.5), 5) for s in (0, 1, 4, 5, 7, 9)]
[0.0005, 0.001, 0.001, 0.001, 0.0006, 0.0002]
"""

from __future__ import annotations

import sys

from diffusio.errors import UsageError


def learning_rate(step: int, peak: float, *, warmup: int, total: int, cooldown: float = 0.0) -> float:
    """The rate for optimiser step ``step`` (0-based) of a run of ``total`` steps.

    ``warmup``: steps of linear ramp from peak/warmup up to ``peak``.  ``cooldown``: the last fraction
    of ``total`` over which the rate falls linearly to zero (0: none; 1: the whole run decays).
    """
    rate = peak * min(1.0, (step + 1) / max(1, warmup))
    decay_steps = round(cooldown * total)
    if decay_steps:
        rate *= min(1.0, max(0.0, (total - step) / decay_steps))
    return rate


def check_cooldown(cooldown: float, flag: str = "--cooldown", steps_flag: str = "--steps") -> None:
    """Refuse a cool-down that is not a fraction in [0, 1], naming the parameter as the caller calls it."""
    if isinstance(cooldown, bool) or not isinstance(cooldown, (int, float)) or not 0 <= cooldown <= 1:  # also nan
        raise UsageError(f"{flag} must be a fraction in [0, 1] of {steps_flag}, got {cooldown!r}")


def report_unfinished_cooldown(step: int, total: int, cooldown: float, peak: float, warmup: int) -> None:
    """Say on stderr when a run stopped (time budget, signal) before its cool-down reached the end:
    its weights are not the annealed ones that ``cooldown`` promised."""
    if cooldown and step < total:
        rate = learning_rate(step, peak, warmup=warmup, total=total, cooldown=cooldown)
        print(f"note: the learning-rate cool-down is unfinished (stopped at step {step} of {total}, lr {rate:.2g} "
              f"of {peak:g}); resume with the same steps to finish it", file=sys.stderr)
