"""Time to quality: diffusio's training recipe against diffusers' for the same CPU minutes.

Issue 18's anchor.  Two trainings run side by side on this machine, one torch thread each, for the
same wall-clock minutes of training, and the weights of each are kept after every checkpoint
minute (default 30, 60 and 120):

* **ours**: ``diffusio train --data fashion-mnist`` with its defaults (EDM preconditioning and loss,
  a 1.6M-parameter UNet, text condition from the class captions, batch 64, EMA), resumed segment by
  segment (``--minutes``, ``--resume``; a resumed run equals an uninterrupted one);
* **diffusers**: the ``train_unconditional`` recipe of diffusers' examples with class labels
  (``bench/diffusers_row.py --classes 10``): ``UNet2DModel`` with ``num_class_embeds`` and diffusers'
  default block layout scaled to 28x28 (channels 32, 64, 64, two layers per block: 1.6M parameters,
  the size of ours), ``DDPMScheduler`` (1000 steps, linear betas), epsilon prediction and MSE,
  AdamW, warm-up then cosine decay over the whole run, EMA (inv_gamma 1, power 3/4), no flips.

Then every kept model is scored by ``diffusio evaluate`` (its library function, with the same real
draws for all) at 20 steps, over a small grid of sampling settings for each; the best FD of each
model at each checkpoint goes in the table, with the ratio ours / diffusers.  diffusers'
class-conditional UNet has no "no class" row, so it samples without guidance; ours is tried with
and without it.

The run in docs/benchmarks.md::

    nohup .venv/bin/python bench/time_to_quality.py --out /work/runs/ttq > /work/runs/ttq.log 2>&1 &

A quick end-to-end check: ``--out /tmp/ttq --checkpoints 0.2 0.4 -n 64 --per-prompt 0``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# 20-step settings tried for each model; the best FD per checkpoint is reported
OURS_SETTINGS = [
    {"sampler": "dpmpp-2m", "guidance": 1.0},
    {"sampler": "dpmpp-2m", "guidance": 2.0},
    {"sampler": "dpmpp-2m", "guidance": 3.0},  # the default of a freshly trained model
    {"sampler": "dpmpp-2m", "guidance": 3.5, "guidance_interval": (0.3, 5.0)},  # the flagship's
]
DIFFUSERS_SETTINGS = [
    {"sampler": "dpmpp-2m"},  # on diffusers' own "leading" timesteps (diffusio's loader default)
    {"sampler": "unipc"},
]
DIFFUSERS_OWN = ["ddim", "dpmsolver++2m"]  # diffusers' own scheduler loops (DDIM clips x0: best on earlier runs)


# ----------------------------------------------------------------------------- training


def train_ours(out: Path, checkpoints: list[float], seed: int, bf16: str = "auto") -> None:
    """diffusio's default recipe, stopped and kept at every checkpoint minute."""
    from diffusio.generative.training.trainer import TrainConfig, train

    run = out / "ours" / "run"
    for minutes in checkpoints:
        done = _ours_minutes(run)
        if done < minutes:
            cfg = TrainConfig(data="fashion-mnist", out=str(run), steps=10**7, seed=seed, minutes=minutes - done,
                              every=1000, threads=1, quiet=True, bf16=bf16,
                              extra={"command": "bench/time_to_quality.py (diffusio train defaults)"})
            train(cfg, resume=(run / "train_state.json").exists())
        keep = out / "ours" / f"at-{minutes:g}min"
        if not keep.exists():
            keep.mkdir(parents=True)
            for name in ("model.safetensors", "config.json"):
                shutil.copy2(run / name, keep / name)
        print(f"ours: kept {keep} after {_ours_minutes(run):.1f} minutes", flush=True)


def _ours_minutes(run: Path) -> float:
    state = run / "train_state.json"
    return json.loads(state.read_text())["wall_seconds"] / 60 if state.exists() else 0.0


def train_diffusers(out: Path, checkpoints: list[float], seed: int) -> None:
    sys.path.insert(0, str(HERE))
    import diffusers_row

    folder = out / "diffusers"
    diffusers_row.main(["--out", str(folder), "--minutes", f"{max(checkpoints):g}", "--classes", "10",
                        "--layers-per-block", "2", "--no-flip", "--seed", str(seed), "--skip-eval",
                        "--snapshots", *[f"{m:g}" for m in checkpoints]]
                       + (["--resume"] if (folder / "train_state.pt").exists() else []))


def run_both(args, phases: tuple[str, str]) -> None:
    """Two phases as two processes at once, one thread each (the trainings: the same minutes on the
    same machine)."""
    common = ["--out", args.out, "--checkpoints", *[f"{m:g}" for m in args.checkpoints], "--seed", str(args.seed),
              "--ours-bf16", args.ours_bf16,
              "-n", str(args.n), "--per-prompt", str(args.per_prompt)]
    for flag, keep in (("--ours-settings", args.ours_settings), ("--diffusers-settings", args.diffusers_settings)):
        if keep is not None:
            common += [flag, *map(str, keep)]
    procs = []
    for phase in phases:
        log = open(Path(args.out) / f"{phase}.log", "a")
        procs.append(subprocess.Popen([sys.executable, __file__, "--phase", phase, *common], stdout=log,
                                      stderr=subprocess.STDOUT, env=_one_thread_env()))
    codes = [p.wait() for p in procs]
    if any(codes):
        raise SystemExit(f"{' or '.join(phases)} failed (exit codes {codes}); see the logs in {args.out}, then "
                         "rerun: trainings resume from their last checkpoint")


def _one_thread_env() -> dict:
    import os

    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


# ----------------------------------------------------------------------------- evaluation


def evaluate_all(args, who: str) -> list[dict]:
    """Every kept model of ``who`` (ours or diffusers), at every setting."""
    from diffusio.generative.evaluation.evaluate import evaluate

    out, rows = Path(args.out), []
    settings = OURS_SETTINGS if who == "ours" else DIFFUSERS_SETTINGS
    keep = args.ours_settings if who == "ours" else args.diffusers_settings
    settings = [s for i, s in enumerate(settings) if keep is None or i in keep]
    own = [k for i, k in enumerate(DIFFUSERS_OWN, len(DIFFUSERS_SETTINGS)) if keep is None or i in keep]
    for minutes in args.checkpoints:
        folder = out / who / f"at-{minutes:g}min"
        for setting in settings:
            started = time.perf_counter()
            report = evaluate(str(folder), n=args.n, steps=20, seed=args.seed, per_prompt=args.per_prompt,
                              data="fashion-mnist", **setting)
            row = {"minutes": minutes, "who": who, **{k: list(v) if isinstance(v, tuple) else v
                                                     for k, v in setting.items()},
                   **report["model"], "floor_fd": report["real_floor"]["fd"],
                   "label_accuracy": report.get("label_accuracy"),
                   "steps_trained": _steps_trained(folder, who),
                   "eval_seconds": round(time.perf_counter() - started, 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
        for kind in own if who == "diffusers" else ():
            row = {"minutes": minutes, "who": "diffusers", "sampler": f"diffusers {kind}",
                   **diffusers_own(out / "diffusers" / f"at-{minutes:g}min", kind, args.n, args.seed)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def diffusers_own(folder: Path, kind: str, n: int, seed: int) -> dict:
    """diffusers' own 20-step scheduler loop, class-conditional, scored on evaluate's draws."""
    sys.path.insert(0, str(HERE))
    import diffusers_row
    from diffusio.generative.data.datasets import load_dataset
    from diffusio.generative.evaluation.classifier import load_classifier
    from diffusio.generative.evaluation.evaluate import evaluation_draws
    from diffusio.generative.evaluation.metrics import feature_metrics

    started = time.perf_counter()
    clf = load_classifier("fashion-mnist")
    test, train = load_dataset("fashion-mnist", "test"), load_dataset("fashion-mnist", "train")
    ref_idx, labels, floor_idx = evaluation_draws(len(test), train.labels, n, seed, conditional=True)
    real = clf.features(test.images[ref_idx])
    images, _, _ = diffusers_row.diffusers_rows(folder, kind, 20, n, seed, 250, labels=labels)
    metrics = feature_metrics(real, clf.features(images), 3, seed)
    label_accuracy = float((clf.predict(images) == labels).mean())
    return {**metrics, "floor_fd": feature_metrics(real, clf.features(train.images[floor_idx]), 3, seed)["fd"],
            "label_accuracy": label_accuracy, "steps_trained": _steps_trained(folder, "diffusers"),
            "eval_seconds": round(time.perf_counter() - started, 1)}


def _steps_trained(folder: Path, who: str) -> int:
    if who == "ours":
        return json.loads((folder / "config.json").read_text())["training"]["steps_done"]
    return json.loads((folder / "trained.json").read_text())["steps"]


def table(rows: list[dict], n: int) -> str:
    best = {}
    for r in rows:
        key = (r["minutes"], r["who"])
        if key not in best or r["fd"] < best[key]["fd"]:
            best[key] = r
    lines = [f"Best FD over each model's 20-step settings; n = {n} samples against {n} real test images "
             "(diffusio evaluate's draws)", "",
             "| training minutes | ours: steps | FD | setting | recall | precision | diffusers: steps | FD | setting | "
             "recall | precision | ours / diffusers | floor |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for minutes in sorted({m for m, _ in best}):
        o, d = best[(minutes, "ours")], best[(minutes, "diffusers")]
        lines.append(f"| {minutes:g} | {o['steps_trained']:,} | {o['fd']:.2f} | {_setting(o)} | {o['recall']:.3f} | "
                     f"{o['precision']:.3f} | {d['steps_trained']:,} | {d['fd']:.2f} | {_setting(d)} | "
                     f"{d['recall']:.3f} | {d['precision']:.3f} | {o['fd'] / d['fd']:.2f} | {o['floor_fd']:.2f} |")
    lines += ["", "Every row:", "", "| minutes | who | setting | FD | recall | precision | label accuracy |",
              "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['minutes']:g} | {r['who']} | {_setting(r)} | {r['fd']:.2f} | {r['recall']:.3f} | "
                     f"{r['precision']:.3f} | {r['label_accuracy']:.3f} |")
    return "\n".join(lines)


def _setting(r: dict) -> str:
    text = r["sampler"]
    if r.get("guidance", 1.0) != 1.0:
        text += f", guidance {r['guidance']:g}"
        if r.get("guidance_interval"):
            text += " in sigma ({:g}, {:g}]".format(*r["guidance_interval"])
    return text


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="/work/runs/ttq")
    p.add_argument("--checkpoints", type=float, nargs="+", default=[30.0, 60.0, 120.0],
                   help="training minutes after which each model is kept and scored (the last ends the run)")
    p.add_argument("--phase", default="all", choices=["all", "train", "evaluate", "train-ours", "train-diffusers",
                                                     "evaluate-ours", "evaluate-diffusers", "table"])
    p.add_argument("-n", type=int, default=1000, help="samples per score (and real images)")
    p.add_argument("--per-prompt", type=int, default=0,
                   help="images per prompt for ours' prompt checks (0: FD, recall and precision only)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ours-settings", type=int, nargs="+", default=None,
                   help="indices into OURS_SETTINGS to score (default: all)")
    p.add_argument("--ours-bf16", choices=["auto", "on", "off"], default="auto",
                   help="ours' bfloat16 autocast in training (auto, its default: where the CPU has AMX or "
                        "AVX-512 BF16; the 2026-12-02 table was float32 on such a CPU, from before the option)")
    p.add_argument("--diffusers-settings", type=int, nargs="+", default=None,
                   help="indices into DIFFUSERS_SETTINGS + DIFFUSERS_OWN to score (default: all)")
    args = p.parse_args(argv)
    args.checkpoints = sorted(args.checkpoints)
    if min(args.checkpoints) <= 0:
        p.error("--checkpoints must be positive minutes")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import torch

    torch.set_num_threads(1)
    if args.phase == "train-ours":
        return train_ours(out, args.checkpoints, args.seed, args.ours_bf16)
    if args.phase == "train-diffusers":
        return train_diffusers(out, args.checkpoints, args.seed)
    if args.phase in ("all", "train"):
        run_both(args, ("train-ours", "train-diffusers"))
    if args.phase in ("evaluate-ours", "evaluate-diffusers"):
        who = args.phase.split("-")[1]
        (out / f"rows-{who}.json").write_text(json.dumps(evaluate_all(args, who), indent=1))
        return
    if args.phase in ("all", "evaluate"):  # the two evaluations side by side, one thread each
        run_both(args, ("evaluate-ours", "evaluate-diffusers"))
    if args.phase in ("all", "evaluate", "table"):
        rows = [r for who in ("ours", "diffusers") for r in json.loads((out / f"rows-{who}.json").read_text())]
        text = table(rows, args.n)
        (out / "table.md").write_text(text + "\n")
        print(text, flush=True)


if __name__ == "__main__":
    main()
