"""The one training loop, shared by training and distillation: steps, loss checks, progress bar,
checkpoints every N steps, a wall-time budget, and a clean stop on SIGTERM/SIGINT."""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from typing import Callable, Protocol

from tqdm.auto import tqdm

from diffusio.errors import UsageError


class Run(Protocol):
    """What the loop advances: a step counter, the loss history and the wall time so far."""

    step: int
    losses: list[float]
    wall: float


def run_loop(run: Run, train_step: Callable[[], float], checkpoint: Callable[[], None], *, total: int,
             every: int, minutes: float, desc: str, quiet: bool,
             any_across: Callable[[bool], bool] = bool) -> str | None:
    """Call ``train_step()`` (which advances ``run.step``) until ``run.step == total``.

    ``checkpoint()`` runs every ``every`` steps; ``minutes`` (0: none) ends the loop cleanly;
    ``any_across(flag)`` tells whether any process of a distributed run raised ``flag``, so every
    rank stops at the same step.  A non-finite loss stops with an error before anything of that
    step is saved.  Returns the name of the signal that stopped the loop, or None.
    """
    started, wall0 = time.time(), run.wall
    bar = tqdm(total=total, initial=run.step, desc=desc, unit="step", disable=quiet, dynamic_ncols=True)
    smooth = None
    stop = StopFlag()
    try:
        while run.step < total and not any_across(bool(stop.requested)):
            loss = train_step()
            if not math.isfinite(loss):  # the last checkpoint, written before this step, is kept as it was
                raise UsageError(f"training loss became {loss} at step {run.step}; nothing was saved from this "
                                 "step on: lower --lr and --resume from the last checkpoint")
            run.losses.append(round(loss, 5))
            smooth = loss if smooth is None else 0.98 * smooth + 0.02 * loss
            run.wall = wall0 + time.time() - started
            bar.update(1)
            bar.set_postfix(loss=f"{smooth:.4f}", refresh=False)
            if every and run.step % every == 0:
                checkpoint()
            if any_across(bool(minutes) and run.wall - wall0 > minutes * 60):
                bar.write(f"time budget of {minutes} min reached at step {run.step}")
                break
    finally:
        bar.close()
        stop.restore()
    if stop.requested:
        print(f"stopping at step {run.step} on {stop.requested}; resume with --resume", file=sys.stderr)
    return stop.requested


class StopFlag:
    """SIGTERM/SIGINT end the run after the current step, with a checkpoint, instead of losing it."""

    def __init__(self):
        self.requested = None
        self._old = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        if self.requested:  # second signal: give up at once
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum).name

    def restore(self):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
