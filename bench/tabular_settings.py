"""Column mixing (TabCutMixPlus) against memorisation: the same fit with and without it, over seeds.

    python bench/tabular_mix.py --table breast-cancer --steps 2700 --seeds 0,1,2 --mix 0,0.7,1

The split and scores are bench/tabular.py's (an 80/20 split with seed 0, ``evaluate_table``); each
seed fits the model and draws as many rows as the training split.  Prints one markdown row per
(mix, seed) and the mean per mix: ML efficacy, SDMetrics quality, detection AUC and the DCR check
(median distance to the closest training row, synthetic vs the real holdout).
"""

from __future__ import annotations

import argparse
import time

import torch

from diffusio.tabular import TableDiffusion, load_table
from diffusio.tabular.metrics import evaluate_table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", default="breast-cancer")
    ap.add_argument("--steps", type=int, default=2700, help="training steps (bench/tabular.py's budget gave 2,687)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--mix", default="0,0.7,1", help="comma list of mixing rates")
    ap.add_argument("--threshold", type=float, default=0.5, help="correlation that joins columns into a group")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from sklearn.model_selection import train_test_split

    df, target = load_table(args.table)
    train, test = train_test_split(df, test_size=0.2, random_state=0)
    print(f"{args.table}: {len(train)} training rows, {args.steps} steps, threshold {args.threshold}")
    print("| mix | seed | ML eff. | quality | detect. | DCR synth / holdout | DCR | fit s |\n|---|---|---|---|---|---|---|---|")
    for mix in (float(m) for m in args.mix.split(",")):
        rows = []
        for seed in (int(s) for s in args.seeds.split(",")):
            t = time.time()
            model = TableDiffusion(steps=args.steps, seed=seed, mix=mix, mix_threshold=args.threshold)
            model.fit(train, target=target)
            s = evaluate_table(train, model.sample(len(train), seed=seed), holdout=test, target=target, seed=seed)
            r = (s["ml_efficacy"]["ratio"], s["quality"]["score"], s["detection_auc"], s["dcr"]["synthetic_median"],
                 s["dcr"]["holdout_median"], s["dcr"]["passed"])
            rows.append(r)
            print(f"| {mix:g} | {seed} | {r[0]:.3f} | {r[1]:.3f} | {r[2]:.3f} | {r[3]:.3f} / {r[4]:.3f} | "
                  f"{'pass' if r[5] else 'fail'} | {time.time() - t:.0f} |", flush=True)
        mean = [sum(r[i] for r in rows) / len(rows) for i in range(5)]
        print(f"| **{mix:g}** | mean | {mean[0]:.3f} | {mean[1]:.3f} | {mean[2]:.3f} | {mean[3]:.3f} / {mean[4]:.3f} | "
              f"{sum(r[5] for r in rows)} of {len(rows)} pass | |", flush=True)


if __name__ == "__main__":
    main()
