"""One TableDiffusion setting varied on one table, over seeds: the same fit and scores otherwise.

    python bench/tabular_settings.py --table breast-cancer --steps 2700 --seeds 0,1,2 --vary mix=0,0.7,1
    python bench/tabular_settings.py --table churn --steps 6000 --seeds 0,1,2 --vary derive=false,true
    python bench/tabular_settings.py --table credit --steps 6000 --seeds 0,1 --vary guidance=1,1.5,2
    python bench/tabular_settings.py --table churn --steps 12000 --seeds 0 --set guidance=2 \
        --vary "guidance_interval=null,[1,10],[0.1,2]"

The split and scores are bench/tabular.py's (an 80/20 split with seed 0, ``evaluate_table``); each
seed fits the model and draws as many rows as the training split.  A sampling setting (guidance,
guidance_interval, sample_steps, sampler, bf16) is compared on one fit per seed; ``--set`` fixes
other settings for every row.  Prints one markdown row per
(value, seed) and the mean per value: ML efficacy, SDMetrics quality, detection AUC and the DCR
check (median distance to the closest training row, synthetic vs the real holdout).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import time

import torch

from diffusio.tabular import TableDiffusion, load_table
from diffusio.tabular.metrics import evaluate_table
from diffusio.tabular.model import default_steps

SAMPLING = {"guidance", "guidance_interval", "sample_steps", "sampler", "bf16", "redraws", "redraw_below"}   # settings sample() reads: no refit needed


def parse_vary(text: str, option: str = "--vary") -> tuple[str, list]:
    """``name=v1,v2`` -> (name, [v1, v2]) with each value read as JSON (true, 0.7, "x", [1,10]);
    commas inside brackets belong to the value."""
    name, _, values = text.partition("=")
    fields = {f.name for f in dataclasses.fields(TableDiffusion)}
    if name not in fields or not values:
        raise SystemExit(f"{option} must be SETTING=V1,V2 with a TableDiffusion setting; known: {', '.join(sorted(fields))}")
    try:
        return name, [json.loads(v) for v in re.findall(r"\[[^\]]*\]|[^,]+", values)]
    except json.JSONDecodeError as err:
        raise SystemExit(f"{option}: values are JSON (0.7, true, null, [1,10]); {err} in {values!r}") from None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", default="breast-cancer")
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: TableDiffusion's, which grow with the rows)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--vary", default="mix=0,0.7,1", help="SETTING=V1,V2,...: the setting compared")
    ap.add_argument("--set", action="append", default=[], help="SETTING=VALUE for every row (repeatable)")
    args = ap.parse_args()
    name, values = parse_vary(args.vary)
    fixed = {}
    for text in args.set:
        key, vals = parse_vary(text, "--set")
        if len(vals) != 1:
            raise SystemExit(f"--set takes one value (SETTING=VALUE), got {text!r}; compare values with --vary")
        fixed[key] = vals[0]
    torch.set_num_threads(1)
    from sklearn.model_selection import train_test_split

    df, target = load_table(args.table)
    train, test = train_test_split(df, test_size=0.2, random_state=0)
    steps = args.steps or default_steps(len(train))
    print(f"{args.table}: {len(train)} training rows, {steps} steps, varying {name}"
          + (f", with {fixed}" if fixed else ""))
    print(f"| {name} | seed | ML eff. | quality | detect. | DCR synth / holdout | DCR | fit s |\n|---|---|---|---|---|---|---|---|")
    results: dict = {json.dumps(v): [] for v in values}
    for seed in (int(v) for v in args.seeds.split(",")):
        model, fit_s = None, 0.0
        for value in values:
            if model is None or name not in SAMPLING:   # a sampling setting: one fit per seed serves every value
                t = time.time()
                model = TableDiffusion(steps=steps, seed=seed, **{**fixed, name: value}).fit(train, target=target)
                fit_s = time.time() - t
            setattr(model, name, value)
            sc = evaluate_table(train, model.sample(len(train), seed=seed), holdout=test, target=target, seed=seed)
            r = (sc["ml_efficacy"]["ratio"], sc["quality"]["score"], sc["detection_auc"], sc["dcr"]["synthetic_median"],
                 sc["dcr"]["holdout_median"], sc["dcr"]["passed"])
            results[json.dumps(value)].append(r)
            print(f"| {value} | {seed} | {r[0]:.3f} | {r[1]:.3f} | {r[2]:.3f} | {r[3]:.3f} / {r[4]:.3f} | "
                  f"{'pass' if r[5] else 'fail'} | {fit_s:.0f} |", flush=True)
    for value in values:
        rows = results[json.dumps(value)]
        mean = [sum(r[i] for r in rows) / len(rows) for i in range(5)]
        print(f"| **{value}** | mean | {mean[0]:.3f} | {mean[1]:.3f} | {mean[2]:.3f} | {mean[3]:.3f} / {mean[4]:.3f} | "
              f"{sum(r[5] for r in rows)} of {len(rows)} pass | |", flush=True)

if __name__ == "__main__":
    main()
