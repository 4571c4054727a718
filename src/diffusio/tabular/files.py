"""The file-level tasks behind ``diffusio tabular``: fit a CSV into a run folder, write sampled rows
as CSV, write a report.  Every input is checked before anything is written; outputs are atomic."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from diffusio._io import atomic_path, check_output
from diffusio.errors import UsageError
from diffusio.generative.training.fitting import check_run_folder
from diffusio.tabular.datasets import read_table
from diffusio.tabular.model import TableDiffusion


def fit_file(source: str, out: str | Path, *, target: str | None = None, steps: int | None = None,
             minutes: float | None = None, seed: int = 0, resume: bool = False, quiet: bool = False,
             **settings) -> TableDiffusion:
    """Fit a table (a CSV file or a bundled table's name) into the run folder ``out``.

    A bundled table brings its usual target when none is given.  An existing run in ``out`` is
    continued with ``resume=True`` and never overwritten otherwise.
    """
    df, default_target = read_table(source)
    out = check_run_folder(out, resume)
    model = TableDiffusion(steps=steps, minutes=minutes, seed=seed, quiet=quiet, **settings)
    return model.fit(df, target=target or default_target, out=out, resume=resume)


def parse_condition(text: str | None) -> dict | None:
    """``"column=value"`` as ``{column: value}`` (the value may itself contain '=')."""
    if text is None:
        return None
    column, sep, value = text.partition("=")
    if not sep or not column:
        raise UsageError(f"condition must look like COLUMN=VALUE (e.g. Status=bad), got {text!r}")
    return {column: value}


def sample_file(model_dir: str | Path, n: int, output: str | Path, *, condition: str | dict | None = None,
                seed: int = 0, force: bool = False, guidance: float | None = None,
                guidance_interval: tuple[float, float] | None = None, bf16: str | None = None,
                redraws: int | None = None, redraw_below: float | None = None,
                progress: bool = False) -> tuple[pd.DataFrame, dict]:
    """Sample ``n`` rows from a fitted model and write them to ``output`` (.csv); the rows, and what
    the label check drew again (``TableDiffusion.redrawn``).  ``progress``: a bar over the sampler's steps."""
    path = check_output(output, suffixes=(".csv",), force=force)
    if path.exists() and not force:
        raise UsageError(f"-o {path} exists; add --force to overwrite it, or choose another -o")
    model = TableDiffusion.load(model_dir)
    rows = model.sample(n, seed=seed, condition=parse_condition(condition) if isinstance(condition, str) else condition,
                        guidance=guidance, guidance_interval=guidance_interval, bf16=bf16, redraws=redraws,
                        redraw_below=redraw_below, progress=progress)
    with atomic_path(path) as tmp:
        rows.to_csv(tmp, index=False)
    return rows, model.redrawn


def report_file(model_dir: str | Path, real: str, output: str | Path, *, holdout: str | None = None,
                n: int | None = None, seed: int = 0, force: bool = False) -> dict:
    """Score a fitted model against its training table (``real``) and optional ``holdout`` rows, and
    write the HTML report to ``output``."""
    from diffusio.tabular.report import report

    path = check_output(output, suffixes=(".html",), inputs=(real, holdout), force=force)
    model = TableDiffusion.load(model_dir)
    real_df, _ = read_table(real)
    holdout_df = None if holdout is None else read_table(holdout)[0]
    return report(model, real_df, path, holdout=holdout_df, n=n, seed=seed)
