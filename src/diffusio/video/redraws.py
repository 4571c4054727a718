"""Redraws: clips a check reads as wrong are drawn again from new noise, keeping each clip's best try.

Two checks read finished clips; both are trained on real clips and captions only, and neither is
one of the judges of docs/benchmarks-video.md:

* the **garment check** (:mod:`diffusio.video.garment_check`): the weakest frame's probability of
  the prompted garment, a clip under :data:`~diffusio.video.garment_check.NAMED_AT` is drawn again;
* the **motion check**: the motion guide's classifier on the finished clip
  (:meth:`~diffusio.video.motion.MotionGuide.agreement`), a clip under
  :data:`~diffusio.video.motion.MOVES_AT` is drawn again: the clips that motion guidance did not
  move as the caption says, as far as the guide's classifier can tell.

A clip's score is the smaller of the two, the motion one moved onto the garment's bar.

>>> import torch
>>> checks = ClipChecks(motion=None, motion_wishes=None)
>>> checks.scores(np.zeros((2, 4, 32, 32, 1), np.uint8), torch.arange(2))   # no check: nothing to redraw
tensor([inf, inf])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from diffusio.generative.conditioning.class_guide import keep_best_of_redraws


@dataclass
class ClipChecks:
    """The checks a generation redraws by, with each row's wishes: ``garment`` (a GarmentCheck) and
    its ``garment_wishes`` (N, K), ``motion`` (a MotionGuide) and its ``motion_wishes`` (N, 7); None: not checked."""

    garment: object | None = None
    garment_wishes: torch.Tensor | None = None
    motion: object | None = None
    motion_wishes: torch.Tensor | None = None

    def __bool__(self) -> bool:
        return self.garment is not None or self.motion is not None

    def scores(self, clips: np.ndarray, rows: torch.Tensor) -> torch.Tensor:
        """The clips' scores on the garment check's scale (under ``NAMED_AT``: drawn again); ``rows``:
        which of the generation's rows they are."""
        from diffusio.video.garment_check import NAMED_AT
        from diffusio.video.motion import MOVES_AT

        score = torch.full((len(rows),), float("inf"))
        if self.garment is not None:
            score = self.garment.scores(clips, self.garment_wishes[rows])
        if self.motion is not None:
            moves = self.motion.agreement(clips, self.motion_wishes[rows]) + (NAMED_AT - MOVES_AT)
            score = torch.minimum(score, moves)
        return score

    def what(self) -> str:
        """What a clip that passes does, for warnings."""
        wants = (["show the prompted garment in every frame"] if self.garment is not None else []) + (
            ["move as prompted"] if self.motion is not None else [])
        return " and ".join(wants)


def redraw(clips: np.ndarray, checks: ClipChecks, redraws: int, draw, seed: int) -> tuple[np.ndarray, int]:
    """Draw again, up to ``redraws`` times, the clips ``checks`` score under the bar, keeping each
    clip's best try: the clips and how many stay under.  ``draw(rows, seed)`` samples the clips of
    those rows again; round r's noise comes from (seed, r), so the same seed gives the same clips.
    Rows that wish for nothing (unconditional) pass every check, so they are never drawn again."""
    from diffusio.video.garment_check import NAMED_AT

    return keep_best_of_redraws(clips, checks.scores(clips, torch.arange(len(clips))), NAMED_AT, redraws, draw,
                                checks.scores, (seed,))
