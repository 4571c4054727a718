"""How a TableDiffusion uses its label check when sampling: which classes it blurs, and the rows of
those classes drawn again (see :mod:`.label_check` for the check itself, and
``TableDiffusion.sample(redraws=...)``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from diffusio.generative.conditioning.class_guide import keep_best_of_redraws
from diffusio.tabular.label_check import blurred_classes, class_probability
from diffusio.tabular.relations import to_leftovers

# The label check's default: a class is blurred when over 27 % of its sampled rows fall under the
# probability that 25 % of its real rows fall under; its rows under 0.7 (or under its real rows'
# median probability, if lower) are drawn again
BLUR_SHARE, BLUR_SLACK, BLURRED_BAR = 0.25, 0.02, 0.7
BLUR_ROWS = 20000          # rows drawn once per model (seed BLUR_SEED, at most 500 a class) to find its blurred classes
BLUR_SEED = 0


def redraw_unlikely(model, x: torch.Tensor, codes: torch.Tensor, redraws: int, bar: float | None,
                    draw: Callable[[torch.Tensor, int], torch.Tensor], seed: int) -> pd.DataFrame:
    """The rows ``x`` (encoded, of classes ``codes``) as ``model`` writes them, those its label check
    finds unlikely for their class drawn again, up to ``redraws`` times, by ``draw(rows, seed)``;
    ``bar``: the probability under which every class's rows are redrawn (None: the blurred classes'
    default).  Adds to ``model.redrawn``.  Each try is decoded and scored once: the tries' written
    rows go into a pool, and the redraw keeps each row's place in it."""
    pool, scores = [], []

    def written(coords: torch.Tensor, of: torch.Tensor) -> torch.Tensor:
        start = sum(map(len, pool))
        pool.append(model._written(coords, of))
        scores.append(label_scores(model, pool[-1], of))
        return torch.arange(start, start + len(coords))

    places = written(x, codes)
    score = scores[0].clone()
    if bar is not None:
        bars = torch.full_like(score, bar)
    else:
        # no higher than the class's real median: where real rows are themselves ambiguous (a
        # flight's airport of origin), a bar above it would redraw most rows and keep them anyway
        real = torch.from_numpy(np.minimum(BLURRED_BAR, model.check.real_bar(codes.numpy(), 0.5)))
        bars = torch.where(torch.isin(codes, torch.tensor(find_blurred(model), dtype=torch.long)), real, 0.0)
        bars = bars.to(score.dtype)
    under = int((score < bars).sum())
    places, short = keep_best_of_redraws(places, score, bars, redraws, lambda rows, s: written(draw(rows, s), codes[rows]),
                                         lambda made, rows: scores[-1], (int(seed),))  # the try just drawn
    model.redrawn = {key: model.redrawn[key] + add for key, add in
                     (("rows", len(x)), ("redrawn", under), ("under_bar", short))}
    return pd.concat(pool, ignore_index=True).iloc[places.numpy()].reset_index(drop=True)


@torch.no_grad()
def find_blurred(model) -> list[int]:
    """The classes ``model``'s label check redraws by default (codes), found once per model on rows
    drawn for each class from a fixed seed, at the model's guidance, and kept in ``model.blurred``
    (saved with it)."""
    if model.blurred is None:
        k = len(model.target.categories)
        codes = torch.arange(k).repeat_interleave(max(1, min(500, BLUR_ROWS // k)))
        x = model._coordinates(len(codes), codes, torch.Generator().manual_seed(BLUR_SEED), model.guidance,
                               model.guidance_interval, False)
        score = label_scores(model, model._written(x, codes), codes).numpy()
        model.blurred = blurred_classes(model.check, score, codes.numpy(), BLUR_SHARE, BLUR_SLACK)
    return model.blurred


def label_scores(model, written: pd.DataFrame, codes: torch.Tensor) -> torch.Tensor:
    """The check's probability of each row's own class, read on the row as written (encoded again)."""
    rows = model.encoder.encode(to_leftovers(written, model.relations))
    return torch.from_numpy(class_probability(model.check, rows, codes.numpy()))
