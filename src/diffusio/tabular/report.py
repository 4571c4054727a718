"""A one-file HTML report on a synthetic table: the metrics, every column's marginal (real beside
synthetic) and the difference of the two association matrices, as pictures.

>>> import tempfile, pathlib
>>> from diffusio.tabular import TableDiffusion, load_table
>>> df, target = load_table("wine")
>>> model = TableDiffusion(steps=20, width=32, depth=1).fit(df, target=target)
>>> out = pathlib.Path(tempfile.mkdtemp()) / "report.html"
>>> scores = report(model, df, out, seed=0)
>>> out.read_text().count("<img") >= 2, 0 <= scores["quality"]["score"] <= 1
(True, True)
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

import numpy as np
import pandas as pd

from diffusio._io import atomic_path
from diffusio.errors import UsageError
from diffusio.tabular.metrics import _is_categorical, evaluate_table
from diffusio.tabular.model import TableDiffusion

MAX_REPORT_ROWS = 50_000   # synthetic rows drawn for a report at most; more only slows the metrics
TOP_CATEGORIES = 12        # bars drawn per categorical column (the most frequent in the real table)


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    return base64.b64encode(buf.getvalue()).decode()


def marginals_figure(real: pd.DataFrame, synth: pd.DataFrame) -> str:
    """Every column's distribution, real beside synthetic, as a base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = list(real.columns)
    ncols = min(4, len(cols))
    nrows = math.ceil(len(cols) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.4 * nrows), squeeze=False)
    try:
        for ax, col in zip(axes.flat, cols):
            r, s = real[col].dropna(), synth[col].dropna()
            if _is_categorical(real[col]):
                top = r.astype(str).value_counts(normalize=True).index[:TOP_CATEGORIES]
                rf = r.astype(str).value_counts(normalize=True).reindex(top, fill_value=0)
                sf = s.astype(str).value_counts(normalize=True).reindex(top, fill_value=0)
                pos = np.arange(len(top))
                ax.bar(pos - 0.2, rf.values, 0.4, label="real", color="#4c72b0")
                ax.bar(pos + 0.2, sf.values, 0.4, label="synthetic", color="#dd8452")
                ax.set_xticks(pos, [t[:10] for t in top], rotation=45, ha="right", fontsize=7)
            else:
                lo, hi = float(r.min()), float(r.max())
                bins = np.linspace(lo, hi if hi > lo else lo + 1, 31)
                ax.hist(r, bins=bins, density=True, alpha=0.55, label="real", color="#4c72b0")
                ax.hist(s.clip(lo, hi), bins=bins, density=True, alpha=0.55, label="synthetic", color="#dd8452")
                ax.tick_params(labelsize=7)
            ax.set_title(str(col), fontsize=9)
        for ax in list(axes.flat)[len(cols):]:
            ax.axis("off")
        axes.flat[0].legend(fontsize=7)
        return _png(fig)
    finally:
        plt.close(fig)


def associations(table: pd.DataFrame) -> pd.DataFrame:
    """Spearman rank correlation between every pair of columns, categories taken as their codes in
    sorted order (a monotone summary of how each pair moves together)."""
    coded = pd.DataFrame({c: (table[c].astype(str).astype("category").cat.codes.replace(-1, np.nan)
                              if _is_categorical(table[c]) else pd.to_numeric(table[c], errors="coerce"))
                          for c in table.columns})
    return coded.corr(method="spearman").fillna(0.0)


def association_figure(real: pd.DataFrame, synth: pd.DataFrame) -> str:
    """|association(real) - association(synthetic)| for every column pair, as a base64 PNG heatmap."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    diff = (associations(real) - associations(synth)).abs()
    size = max(4.0, 0.35 * len(diff) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    try:
        im = ax.imshow(diff.values, vmin=0, vmax=1, cmap="Reds")
        ax.set_xticks(range(len(diff)), [str(c)[:12] for c in diff.columns], rotation=90, fontsize=7)
        ax.set_yticks(range(len(diff)), [str(c)[:12] for c in diff.index], fontsize=7)
        ax.set_title(f"|real - synthetic| rank correlation (mean {diff.values[np.triu_indices(len(diff), 1)].mean():.3f})",
                     fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
        return _png(fig)
    finally:
        plt.close(fig)


def _row(name: str, value, goal: str = "") -> str:
    text = f"{value:.3f}" if isinstance(value, float) else html.escape(str(value))
    return f"<tr><td>{html.escape(name)}</td><td>{text}</td><td>{html.escape(goal)}</td></tr>"


def _metrics_table(scores: dict) -> str:
    q = scores["quality"]
    rows = [_row("SDMetrics quality score", q["score"], "1.0 is best"),
            _row("  column shapes", q["column_shapes"]), _row("  column pair trends", q["column_pair_trends"]),
            _row("detection ROC AUC (gradient boosting)", scores["detection_auc"], "0.5 is best")]
    if "ml_efficacy" in scores:
        ml = scores["ml_efficacy"]
        rows += [_row(f"ML efficacy, trained on real ({ml['metric']})", ml["real"]),
                 _row(f"ML efficacy, trained on synthetic ({ml['metric']})", ml["synthetic"], "close to the real one"),
                 _row("  synthetic / real", ml["ratio"], "1.0 is best")]
    else:
        rows.append(_row("ML efficacy", "not measured: give holdout rows the model never saw (--holdout) "
                         "and a model fitted with a target"))
    if "dcr" in scores:
        d = scores["dcr"]
        rows += [_row("DCR median, synthetic to train", d["synthetic_median"]),
                 _row("DCR median, holdout to train", d["holdout_median"]),
                 _row("DCR check", "passed" if d["passed"] else "FAILED: synthetic rows sit closer to the training "
                      "rows than new real rows do; refit with more column mixing (--mix 0.7 or 1) or fewer --steps",
                      "passed"),
                 _row("share of synthetic rows closer to train than to holdout", d["share_closer_to_train"], "about 0.5")]
    else:
        rows.append(_row("DCR privacy check", "not measured: give holdout rows the model never saw (--holdout)"))
    return "<table><tr><th>measure</th><th>value</th><th>goal</th></tr>" + "".join(rows) + "</table>"


def report(model: TableDiffusion | str | Path, real: pd.DataFrame, out: str | Path, *,
           holdout: pd.DataFrame | None = None, n: int | None = None, seed: int = 0) -> dict:
    """Sample ``n`` rows (default: as many as ``real``, at most 50,000), score them against ``real``
    (the training table) and ``holdout`` (real rows the model never saw, optional), and write a
    self-contained HTML report to ``out``.  Returns the scores."""
    model = model if isinstance(model, TableDiffusion) else TableDiffusion.load(model)
    real = real.rename(columns=str)
    if list(real.columns) != model.columns:
        raise UsageError(f"the real table's columns {list(real.columns)[:6]} are not the model's "
                         f"{model.columns[:6]}; give the table the model was fitted on")
    if holdout is not None and list(holdout.rename(columns=str).columns) != model.columns:
        raise UsageError("the holdout table's columns are not the model's; give rows of the same table")
    n = min(len(real), MAX_REPORT_ROWS) if n is None else n
    synth = model.sample(n, seed=seed)
    scores = evaluate_table(real, synth, holdout=None if holdout is None else holdout.rename(columns=str),
                            target=model.target_name, seed=seed)
    scores["redrawn"] = dict(model.redrawn)
    checked = (f" The label check drew {model.redrawn['redrawn']:,} rows again (up to {model.redraws} times); "
               f"{model.redrawn['under_bar']:,} stayed under their bar and were kept as their best try."
               if model.redrawn["redrawn"] else "")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>diffusio tabular report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}td,th{{padding:2px 10px;text-align:left}}
img{{max-width:100%}}</style></head><body>
<h1>Synthetic table report</h1>
<p>{n:,} synthetic rows against {len(real):,} real training rows{'' if holdout is None else f' and {len(holdout):,} holdout rows'};
model trained {model.run.step:,} steps ({model.run.wall / 60:.1f} min); target: {html.escape(str(model.target_name))}; seed {seed}.{checked}</p>
<h2>Metrics</h2>{_metrics_table(scores)}
<h2>Columns: real beside synthetic</h2><img alt="marginals" src="data:image/png;base64,{marginals_figure(real, synth)}">
<h2>Column pairs: how far the associations moved</h2><img alt="associations" src="data:image/png;base64,{association_figure(real, synth)}">
</body></html>"""
    with atomic_path(out) as tmp:
        Path(tmp).write_text(page)
    return scores
