"""bfloat16 against float32 for images: training steps, sampling, and the quality of what each trains.

On CPUs with AMX or AVX-512 BF16 (``/proc/cpuinfo``), ``diffusio train --bf16 auto`` (the default)
runs the forward and backward passes under bfloat16 autocast, and ``generate / evaluate --bf16
on`` samples that way.  This bench measures both beside float32 in one run:

* ``--phase speed`` (about a minute): median seconds per training step of the shipped ``fashion``
  network (batch 64, EDM loss, Adam) and per sampling call (32 images, the model's default
  sampling), float32 and bfloat16, at each ``--threads``;
* ``--phase quality``: two ``diffusio train`` runs from scratch, the same seed, one pinned core
  each, side by side for ``--minutes``: ``--bf16 off`` and ``--bf16 on``.  Every checkpoint of both
  is kept (``--every``), and ``diffusio evaluate`` scores, in float32 sampling at guidance 1: both
  at the last step both kept (equal steps: does bfloat16 train as well?) and both at their end
  (equal minutes: what a user gets).

    python bench/bf16.py --phase speed --threads 1 2
    python bench/bf16.py --phase quality --out /work/runs/bf --minutes 30 -n 1000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def speed(threads: list[int], repeats: int) -> None:
    import torch

    from diffusio._precision import bf16_autocast, cpu_has_bf16
    from diffusio.generative import Generator
    from diffusio.generative.checkpoint.models import build_denoiser_from_config
    from diffusio.generative.training.losses import edm_loss

    print(f"CPU computes bfloat16 natively: {cpu_has_bf16()}")
    gen = Generator.load("fashion")
    cfg = gen.model.config
    net = build_denoiser_from_config(cfg)
    net.net.load_state_dict(gen.model.denoiser.net.state_dict())
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-5)
    x0 = torch.rand(64, *gen.model.image_shape) * 2 - 1
    cond = gen.model.class_embeddings[torch.arange(64) % 10]
    print("| threads | training step, float32 | bfloat16 | ratio | 32 images sampled, float32 | bfloat16 | ratio |")
    print("|---|---|---|---|---|---|---|")
    for t in threads:
        torch.set_num_threads(t)
        row = [str(t)]
        for what in ("train", "sample"):
            times = {}
            for bf16 in (False, True):
                runs = []
                for i in range(repeats + 2):
                    start = time.perf_counter()
                    if what == "train":
                        with bf16_autocast(bf16):
                            loss = edm_loss(net, x0, cond, torch.Generator().manual_seed(i)).float()
                        opt.zero_grad()
                        loss.backward()
                        opt.step()
                    else:
                        gen.sample("a coat", n=32, seed=i, bf16="on" if bf16 else "off")
                    runs.append(time.perf_counter() - start)
                times[bf16] = statistics.median(runs[2:])  # the first two warm the kernels up
            row += [f"{times[False]:.3f} s", f"{times[True]:.3f} s", f"{times[False] / times[True]:.2f}x"]
        print("| " + " | ".join(row) + " |", flush=True)


def quality(out: Path, minutes: float, every: int, n: int, seed: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    exe = [sys.executable, "-m", "diffusio"]  # this environment's, activated or not
    procs = {}
    for core, mode in enumerate(("off", "on")):
        run = out / f"bf16-{mode}"
        if (run / "train_state.json").exists():
            continue  # trained already: only the scores are redone
        cmd = ["taskset", "-c", str(core % os.cpu_count()), *exe, "train", "--data", "fashion-mnist", "--out",
               str(run), "--threads", "1", "--bf16", mode, "--minutes", f"{minutes:g}", "--every", str(every),
               "--seed", str(seed), "--quiet"]
        procs[mode] = subprocess.Popen(cmd, env=env, stdout=open(out / f"bf16-{mode}.log", "w"), stderr=subprocess.STDOUT)
    kept = {mode: [] for mode in ("off", "on")}
    while procs:  # keep every checkpoint as it is written (the run directory holds only the last)
        for mode in ("off", "on"):
            _keep_checkpoint(out / f"bf16-{mode}", kept[mode])
        for mode, proc in list(procs.items()):
            if proc.poll() is not None:
                if proc.returncode:
                    raise SystemExit(f"the --bf16 {mode} run failed; see {out}/bf16-{mode}.log")
                _keep_checkpoint(out / f"bf16-{mode}", kept[mode])
                del procs[mode]
        time.sleep(5)
    snaps = {mode: sorted((int(p.name.split("-")[-1]), p) for p in out.glob(f"keep/{mode}-*")) for mode in ("off", "on")}
    shared = max(set(dict(snaps["off"])) & set(dict(snaps["on"])))  # the last step both kept
    rows = [("float32, equal steps", shared, dict(snaps["off"])[shared]),
            ("bfloat16, equal steps", shared, dict(snaps["on"])[shared]),
            ("float32, last", *snaps["off"][-1]), ("bfloat16, last (equal minutes)", *snaps["on"][-1])]
    print(f"| n = {n}, guidance 1 | steps | FD | KID | precision | recall | label accuracy |")
    print("|---|---|---|---|---|---|---|")
    for name, step, path in rows:
        report = out / f"report-{path.name}.json"
        if not report.exists():
            subprocess.run([*exe, "evaluate", str(path), "-n", str(n), "--per-prompt", "0", "--guidance", "1",
                            "--bf16", "off", "--json", str(report)], check=True, env=env, stdout=subprocess.DEVNULL)
        r = json.loads(report.read_text())
        m = r["model"]
        print(f"| {name} | {step:,} | {m['fd']:.3f} | {m['kid']:.4f} | {m['precision']:.3f} | {m['recall']:.3f} | "
              f"{r['label_accuracy']:.3f} |", flush=True)
    f = r["real_floor"]
    print(f"| real vs real (the floor) | | {f['fd']:.3f} | {f['kid']:.4f} | {f['precision']:.3f} | {f['recall']:.3f} | |")


def _keep_checkpoint(run: Path, kept: list[int]) -> None:
    try:
        step = json.loads((run / "config.json").read_text())["training"]["steps_done"]
    except (OSError, ValueError, KeyError):
        return  # not written yet, or being written
    if step in kept:
        return
    dest = run.parent / "keep" / f"{run.name.split('-')[-1]}-{step}"
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy2(run / name, dest / name)
    if json.loads((dest / "config.json").read_text())["training"]["steps_done"] == step:
        kept.append(step)  # else the run wrote a newer checkpoint meanwhile: copied again next time


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--phase", choices=["speed", "quality"], default="speed")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=8)
    p.add_argument("--out", default="/work/runs/bf")
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--every", type=int, default=500)
    p.add_argument("-n", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.phase == "speed":
        speed(args.threads, args.repeats)
    else:
        quality(Path(args.out), args.minutes, args.every, args.n, args.seed)


if __name__ == "__main__":
    sys.exit(main())
