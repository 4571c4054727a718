"""diffusio.tabular against SDV (GaussianCopula, CTGAN, TVAE) at an equal CPU-time budget.

    pip install -r requirements-bench.txt
    python bench/tabular.py --tables credit,churn,diamonds,breast-cancer --out runs/bench/tabular
    python bench/tabular.py --defaults --out runs/bench/tabular-defaults     # ours as users get it

For every table: an 80/20 split (seed 0).  Ours fits for ``--minutes`` (scaled per table by
``BUDGET``), or with ``--defaults`` as ``TableDiffusion()`` fits (steps that grow with the table),
on one thread, and its process CPU time is the budget; CTGAN and TVAE are timed at 1 and 3
epochs (overhead and cost per epoch), then fit for as many epochs as fill the budget (the timing
fits are not counted, and a fit that used under 80 % of the budget is redone with the epochs
scaled up); GaussianCopula fits to completion (far under the budget).  Each synthesizer samples
as many rows as the training split, and every row is scored by the same code
(:func:`diffusio.tabular.metrics.evaluate_table`): ML efficacy (gradient boosting trained on
synthetic, tested on the real 20 %, divided by the same model trained on real), SDMetrics'
quality score, detection ROC AUC (gradient boosting, 3-fold), and the DCR privacy check.  The
first row of each table is the real holdout scored as if it were synthetic: the floor of every
metric at that size.  Prints a markdown table and writes JSON beside ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from pathlib import Path

import torch

from diffusio.tabular import TableDiffusion, load_table
from diffusio.tabular.metrics import evaluate_table, sdv_metadata

BUDGET = {"breast-cancer": 0.4, "credit": 1.0, "churn": 1.0, "diamonds": 2.0}   # x --minutes


def split(df, seed=0):
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(df, test_size=0.2, random_state=seed)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def fit_ours(train, target, minutes, seed):
    """Ours for ``minutes`` of wall time, or with every default (``minutes`` None: the steps grow
    with the table, docs/tabular.md); its CPU time becomes the peers' budget."""
    start = time.process_time()
    budget = {} if minutes is None else {"steps": 1_000_000, "minutes": minutes}
    model = TableDiffusion(seed=seed, quiet=True, **budget).fit(train, target=target)
    fit_cpu = time.process_time() - start
    t0 = time.perf_counter()
    model.sample(10_000, seed=seed + 1)
    speed = 10_000 / (time.perf_counter() - t0)
    return model, fit_cpu, speed, model.run.step


def sdv_synthesizer(name, metadata, epochs=None):
    from sdv.metadata import Metadata
    from sdv.single_table import CTGANSynthesizer, GaussianCopulaSynthesizer, TVAESynthesizer

    meta = Metadata.load_from_dict({"tables": {"table": metadata}})
    if name == "GaussianCopula":
        return GaussianCopulaSynthesizer(meta)
    cls = CTGANSynthesizer if name == "CTGAN" else TVAESynthesizer
    return cls(meta, epochs=epochs, verbose=False)


def fit_sdv(name, train, budget_cpu, seed):
    """(synthesizer, CPU seconds of the counted fit, epochs).  CTGAN and TVAE spend a fixed overhead
    (data transforms) plus a cost per epoch: timing fits of 1 and 1 + k epochs separate the two, k
    growing until the k epochs take a second (on a small table the overhead alone outweighs a few
    epochs, and 1 against 3 epochs once gave a negative cost: 83,389 epochs for an 89-second budget),
    so the counted fit gets as many epochs as fill the budget."""
    torch.manual_seed(seed)
    metadata = sdv_metadata(train)
    epochs = None
    if name != "GaussianCopula":
        def cpu(e):
            start = time.process_time()
            sdv_synthesizer(name, metadata, epochs=e).fit({"table": train})
            return time.process_time() - start

        one, k = cpu(1), 2
        while True:
            more = cpu(1 + k)
            if more - one >= 1.0 or k >= 2048:
                break
            k *= 4
        per_epoch = max((more - one) / k, 1e-4)
        overhead = max(one - per_epoch, 0.0)
        epochs = max(1, math.floor((budget_cpu - overhead) / per_epoch))
    for _ in range(3):  # the timing fits misjudge costs: rescale the epochs until the fit uses 0.8-1.25x the budget
        synth = sdv_synthesizer(name, metadata, epochs)
        start = time.process_time()
        synth.fit({"table": train})
        used = time.process_time() - start
        if epochs is None or 0.8 * budget_cpu <= used <= 1.25 * budget_cpu:
            break
        scaled = math.floor(epochs * budget_cpu / used)
        epochs = max(epochs + 1, scaled) if used < budget_cpu else max(1, min(epochs - 1, scaled))
    return synth, used, epochs


def row(table, name, scores, fit_cpu=None, note=""):
    ml, q, dcr = scores["ml_efficacy"], scores["quality"], scores["dcr"]
    return {"table": table, "synthesizer": name, "fit_cpu_s": None if fit_cpu is None else round(fit_cpu, 1),
            "ml_metric": ml["metric"], "ml_real": round(ml["real"], 4), "ml_synthetic": round(ml["synthetic"], 4),
            "ml_ratio": round(ml["ratio"], 4), "quality": round(q["score"], 4),
            "shapes": round(q["column_shapes"], 4), "pairs": round(q["column_pair_trends"], 4),
            "detection_auc": round(scores["detection_auc"], 4), "dcr_synth": round(dcr["synthetic_median"], 4),
            "dcr_holdout": round(dcr["holdout_median"], 4), "dcr_passed": dcr["passed"], "note": note}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", default="credit,churn,diamonds,breast-cancer")
    ap.add_argument("--minutes", type=float, default=3.0, help="our fit time on a table of weight 1 (see BUDGET)")
    ap.add_argument("--defaults", action="store_true", help="fit ours with its defaults instead of --minutes")
    ap.add_argument("--peers", default="GaussianCopula,CTGAN,TVAE")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/bench/tabular")
    args = ap.parse_args()
    torch.set_num_threads(1)  # every synthesizer on one thread: CPU time is then wall time, and fair
    warnings.filterwarnings("ignore")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for table in args.tables.split(","):
        df, target = load_table(table)
        train, test = split(df, args.seed)
        print(f"## {table}: {len(train):,} train rows, {len(test):,} holdout rows, {df.shape[1]} columns, "
              f"target {target}", flush=True)
        rows.append(row(table, "real holdout (floor)", evaluate_table(train, test, holdout=test, target=target,
                                                                    seed=args.seed), note="the holdout itself"))
        print(rows[-1], flush=True)
        minutes = None if args.defaults else args.minutes * BUDGET.get(table, 1.0)
        model, fit_cpu, speed, steps = fit_ours(train, target, minutes, args.seed)
        scores = evaluate_table(train, model.sample(len(train), seed=args.seed), holdout=test, target=target,
                                seed=args.seed)
        rows.append(row(table, "diffusio", scores, fit_cpu, f"{steps} steps; samples {speed:,.0f} rows/s (1 thread)"))
        print(rows[-1], flush=True)
        for peer in args.peers.split(","):
            synth, cpu, epochs = fit_sdv(peer, train, fit_cpu, args.seed)
            t0 = time.perf_counter()
            sample = synth.sample(len(train))
            sample = sample["table"] if isinstance(sample, dict) else sample   # SDV 2 returns {table: rows}
            speed = len(train) / (time.perf_counter() - t0)
            scores = evaluate_table(train, sample[train.columns], holdout=test, target=target, seed=args.seed)
            rows.append(row(table, f"SDV {peer}", scores, cpu,
                            (f"{epochs} epochs; " if epochs else "") + f"samples {speed:,.0f} rows/s"))
            print(rows[-1], flush=True)
        out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    cols = ["table", "synthesizer", "fit_cpu_s", "ml_metric", "ml_ratio", "quality", "detection_auc", "dcr_passed",
            "note"]
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")


if __name__ == "__main__":
    main()
