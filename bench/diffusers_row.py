"""A diffusers model trained with diffusers' own unconditional recipe, sampled by both libraries.

Issue 25's "diffusers-trained bench row".  Three phases, all in this one script:

1. **Train** a small ``diffusers.UNet2DModel`` (28x28, 1 channel) on Fashion-MNIST the way
   diffusers' unconditional image-generation example does it: ``DDPMScheduler`` (1000 steps,
   linear betas), epsilon prediction, MSE loss, AdamW, linear warmup then cosine decay
   (``diffusers.optimization.get_cosine_schedule_with_warmup``), EMA weights
   (``diffusers.training_utils.EMAModel``, inv_gamma 1, power 3/4), random horizontal flips.
   Training stops after ``--minutes`` of wall-clock training (summed over resumes); a checkpoint
   is written every ``--checkpoint-minutes`` and ``--resume`` continues from it.  The cosine
   schedule needs a step count: unless ``--train-steps`` is given it is estimated once from the
   speed of the first steps and stored in the checkpoint.  The EMA weights are saved as a diffusers
   ``DDPMPipeline`` folder (``OUT/pipeline``, safetensors), which diffusio loads as it is.
2. **Sample** ``-n`` images per row: diffusers' ``DPMSolverMultistepScheduler`` and
   ``DDIMScheduler`` (configs derived from the saved DDPM scheduler, the usual
   ``set_timesteps`` / ``step`` loop that diffusers' pipelines run) at each ``--nfe``, and
   diffusio's dpmpp-2m, unipc and heun through ``Generator.load(OUT/pipeline)`` at the same NFE
   (heun: the largest step count whose NFE does not exceed it), plus dpmpp-2m with early stopping.
   Note that a scheduler made ``from_config`` of the saved DDPMScheduler inherits its
   ``timestep_spacing="leading"``: diffusers' rows start at t = 900 (DPM-Solver: 900, 810, ..., 90),
   not at t = 999; diffusio's ``vp-leading`` schedule is the nearest of its schedules to that.
3. **Evaluate** every row with diffusio's evaluation code: features of the shipped Fashion-MNIST
   classifier, FD / precision / recall against ``-n`` real test images, and the real-vs-real floor
   (``-n`` training images against the same test images), with the same draws (``--seed``) as
   ``diffusio evaluate OUT/pipeline --data fashion-mnist``.  That command has no option for the
   schedule, early stopping or diffusers' own schedulers, so this script calls the library functions
   it uses (``load_classifier``, ``load_dataset``, ``feature_metrics``).  One difference: the
   diffusio rows here start from unmarked noise (``watermark=False``, as diffusers' rows do), while
   ``diffusio evaluate`` samples with the default watermark.

Prints a markdown table (method | steps | NFE | FD | floor | precision | recall | seconds) and
writes it, with the JSON rows, into the output folder.

The run in docs/benchmarks.md::

    OMP_NUM_THREADS=1 nohup nice -n 10 .venv/bin/python bench/diffusers_row.py \\
        --out /work/runs/diffusers-fmnist --minutes 35 -n 1000 > /work/runs/diffusers-row.log 2>&1 &

A quick end-to-end check: ``--out /tmp/drow --minutes 0.3 -n 64``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

# ----------------------------------------------------------------------------- training


def make_unet(channels: tuple[int, ...], layers: int, classes: int = 0):
    """``classes`` > 0: a class-conditional UNet (diffusers' ``num_class_embeds``, no "no class" row)."""
    from diffusers import UNet2DModel

    n = len(channels)
    down = ["DownBlock2D"] * (n - 1) + ["AttnDownBlock2D"]  # attention only at the 7x7 level
    up = ["AttnUpBlock2D"] + ["UpBlock2D"] * (n - 1)
    return UNet2DModel(sample_size=28, in_channels=1, out_channels=1, layers_per_block=layers,
                       block_out_channels=tuple(channels), down_block_types=tuple(down),
                       up_block_types=tuple(up), norm_num_groups=min(32, channels[0]),
                       num_class_embeds=classes or None)


def make_scheduler():
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", prediction_type="epsilon")


def save_pipeline(unet, ema, folder: Path) -> None:
    """The EMA weights as a DDPMPipeline folder (safetensors)."""
    import copy

    from diffusers import DDPMPipeline

    ema_unet = copy.deepcopy(unet)
    ema.copy_to(ema_unet.parameters())
    DDPMPipeline(unet=ema_unet, scheduler=make_scheduler()).save_pretrained(folder, safe_serialization=True)


def save_snapshot(unet, ema, folder: Path, state: dict) -> None:
    save_pipeline(unet, ema, folder)
    (folder / "trained.json").write_text(json.dumps({"steps": state["step"], "minutes": state["seconds"] / 60}))


def train(args) -> dict:
    from diffusers.optimization import get_cosine_schedule_with_warmup
    from diffusers.training_utils import EMAModel

    from diffusio.generative.data.datasets import load_dataset

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "train_state.pt"
    torch.manual_seed(args.seed)
    data = load_dataset("fashion-mnist", "train")
    images = torch.from_numpy(data.images)  # [-1, 1], [N, 1, 28, 28]
    labels = torch.from_numpy(data.labels).long()
    classes = args.classes
    unet = make_unet(tuple(args.channels), args.layers_per_block, classes)
    snapshots = sorted(args.snapshots)
    noise_scheduler = make_scheduler()
    optimizer = torch.optim.AdamW(unet.parameters(), lr=args.lr, betas=(0.95, 0.999), weight_decay=1e-6, eps=1e-8)
    ema = EMAModel(unet.parameters(), decay=0.9999, use_ema_warmup=True, inv_gamma=1.0, power=0.75)
    state = {"step": 0, "seconds": 0.0, "total_steps": args.train_steps, "losses": []}
    opt_state = sched_state = None
    if args.resume and ckpt_path.is_file():
        saved = torch.load(ckpt_path, weights_only=True)  # tensors and plain values only: never unpickle code
        unet.load_state_dict(saved["unet"])
        ema.load_state_dict(saved["ema"])
        opt_state, sched_state = saved["optimizer"], saved["lr_scheduler"]
        optimizer.load_state_dict(opt_state)
        state = saved["state"]
        torch.set_rng_state(saved["torch_rng"])
        print(f"resumed at step {state['step']} after {state['seconds'] / 60:.1f} training minutes", flush=True)
    elif ckpt_path.is_file():
        raise SystemExit(f"{ckpt_path} exists; pass --resume to continue it or choose another --out")

    budget = args.minutes * 60.0
    snapshots = [m for m in snapshots if m * 60 > state["seconds"]]  # a resumed run keeps the ones it saved
    lr_scheduler = None

    def make_lr_scheduler(total: int):
        for group in optimizer.param_groups:
            group["initial_lr"] = args.lr
        sch = get_cosine_schedule_with_warmup(optimizer, num_warmup_steps=min(args.warmup, total // 10),
                                              num_training_steps=total)
        if sched_state is not None:
            sch.load_state_dict(sched_state)
        return sch

    if state["total_steps"]:
        lr_scheduler = make_lr_scheduler(state["total_steps"])
    else:
        for group in optimizer.param_groups:
            group["lr"] = args.lr / args.warmup

    def checkpoint() -> None:
        torch.save({"unet": unet.state_dict(), "ema": ema.state_dict(), "optimizer": optimizer.state_dict(),
                    "lr_scheduler": lr_scheduler.state_dict() if lr_scheduler else None, "state": state,
                    "torch_rng": torch.get_rng_state()}, ckpt_path.with_suffix(".tmp"))
        ckpt_path.with_suffix(".tmp").replace(ckpt_path)
        save_pipeline(unet, ema, out / "pipeline")

    unet.train()
    session_start = time.perf_counter()
    base_seconds = state["seconds"]
    last_ckpt = session_start
    probe_steps = 20
    running = []
    while True:
        elapsed = base_seconds + time.perf_counter() - session_start
        if elapsed >= budget or (state["total_steps"] and state["step"] >= state["total_steps"]):
            break
        idx = torch.randint(0, len(images), (args.batch_size,))
        clean = images[idx]
        if args.flip:
            flip = torch.rand(args.batch_size) < 0.5
            clean = torch.where(flip[:, None, None, None], clean.flip(-1), clean)
        noise = torch.randn_like(clean)
        timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (args.batch_size,))
        noisy = noise_scheduler.add_noise(clean, noise, timesteps)
        loss = F.mse_loss(unet(noisy, timesteps, class_labels=labels[idx] if classes else None).sample, noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        if lr_scheduler is None:  # warm up at the base rate while the speed is measured
            for group in optimizer.param_groups:
                group["lr"] = args.lr * min(1.0, (state["step"] + 2) / args.warmup)
        else:
            lr_scheduler.step()
        ema.step(unet.parameters())
        state["step"] += 1
        running.append(loss.item())
        now = time.perf_counter()
        state["seconds"] = base_seconds + now - session_start
        if lr_scheduler is None and state["step"] >= probe_steps:
            per_step = state["seconds"] / state["step"]
            state["total_steps"] = max(state["step"] + 1, int(budget / per_step * 0.97))
            print(f"{per_step:.3f} s/step over the first {state['step']} steps: cosine schedule over "
                  f"{state['total_steps']} steps", flush=True)
            sched_state = None
            lr_scheduler = make_lr_scheduler(state["total_steps"])
            with warnings.catch_warnings():  # "lr_scheduler.step() before optimizer.step()": intended here
                warnings.simplefilter("ignore")
                for _ in range(state["step"]):  # bring the schedule to the current step
                    lr_scheduler.step()
        if state["step"] % args.log_every == 0:
            state["losses"].append([state["step"], float(np.mean(running))])
            print(f"step {state['step']}  loss {np.mean(running):.4f}  lr {optimizer.param_groups[0]['lr']:.2e}  "
                  f"{state['seconds'] / 60:.1f} min", flush=True)
            running = []
        while snapshots and state["seconds"] >= snapshots[0] * 60:  # the EMA weights after this many minutes
            save_snapshot(unet, ema, out / f"at-{snapshots.pop(0):g}min", state)
        if now - last_ckpt >= args.checkpoint_minutes * 60:
            checkpoint()
            last_ckpt = time.perf_counter()
            print(f"checkpoint at step {state['step']}", flush=True)
    checkpoint()
    for minutes in snapshots:  # the schedule ends the run a little before the budget: the end counts as it
        save_snapshot(unet, ema, out / f"at-{minutes:g}min", state)
    print(f"training done: {state['step']} steps in {state['seconds'] / 60:.1f} minutes "
          f"(batch {args.batch_size}); EMA pipeline in {out / 'pipeline'}", flush=True)
    return state


# ----------------------------------------------------------------------------- sampling


@torch.inference_mode()
def diffusers_rows(folder: Path, kind: str, steps: int, n: int, seed: int, batch: int,
                   labels: np.ndarray | None = None) -> tuple[np.ndarray, int, float]:
    """n images from diffusers' own scheduler loop: (images in [-1, 1], NFE per image, seconds);
    ``labels``: the class of each image, for a class-conditional UNet."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, UNet2DModel

    unet = UNet2DModel.from_pretrained(folder / "unet", use_safetensors=True, low_cpu_mem_usage=False).eval()
    config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    cls = {"dpmsolver++2m": DPMSolverMultistepScheduler, "ddim": DDIMScheduler}[kind]
    started = time.perf_counter()
    out, nfe = [], 0
    gen = torch.Generator().manual_seed(seed)
    for start in range(0, n, batch):
        scheduler = cls.from_config(config)
        scheduler.set_timesteps(steps)
        size = min(batch, n - start)
        x = torch.randn((size, 1, 28, 28), generator=gen) * scheduler.init_noise_sigma
        calls = 0
        for t in scheduler.timesteps:
            classes = None if labels is None else torch.as_tensor(labels[start:start + size]).long()
            eps = unet(scheduler.scale_model_input(x, t), t, class_labels=classes).sample
            calls += 1
            x = scheduler.step(eps, t, x).prev_sample
        nfe = calls
        out.append(x.clamp(-1, 1))
    return torch.cat(out).numpy(), nfe, time.perf_counter() - started


def diffusio_rows(gen, sampler: str, steps: int, n: int, seed: int, schedule: str | None,
                  early_stop: float | None = None) -> tuple[np.ndarray, float, float]:
    s = gen.sample(n=n, steps=steps, sampler=sampler, schedule=schedule, seed=seed, early_stop=early_stop,
                   watermark=False)
    return s.images.clamp(-1, 1).numpy(), float(s.nfe), float(s.seconds)


def heun_steps(nfe: int) -> int:
    """Most heun steps with 2*steps - 1 <= nfe."""
    return max(1, (nfe + 1) // 2)


# ----------------------------------------------------------------------------- evaluation


def bench(args) -> list[dict]:
    from diffusio.generative.data.datasets import load_dataset
    from diffusio.generative.evaluation.classifier import load_classifier
    from diffusio.generative.evaluation.metrics import feature_metrics
    from diffusio.generative.pipeline import Generator

    folder = Path(args.out) / "pipeline"
    n = args.n
    clf = load_classifier("fashion-mnist")
    test, train_set = load_dataset("fashion-mnist", "test"), load_dataset("fashion-mnist", "train")
    rng = np.random.default_rng(args.seed)  # the same draws as diffusio evaluate
    real = clf.features(test.images[rng.choice(len(test), min(n, len(test)), replace=False)])
    floor_feats = clf.features(train_set.images[rng.choice(len(train_set), n, replace=False)])
    floor = feature_metrics(real, floor_feats, 3, args.seed)
    print(f"real-vs-real floor at n={n}: FD {floor['fd']:.3f}", flush=True)
    gen = Generator.load(str(folder))
    plan = []
    for nfe in args.nfe:
        plan += [("diffusers DPMSolverMultistep (2M, default config)", "dpmsolver++2m", nfe, None, None),
                 ("diffusers DDIM (default config)", "ddim", nfe, None, None),
                 ("diffusio dpmpp-2m (karras)", "dpmpp-2m", nfe, "karras", None),
                 ("diffusio dpmpp-2m (vp-trailing)", "dpmpp-2m", nfe, "vp-trailing", None),
                 ("diffusio dpmpp-2m (vp-leading)", "dpmpp-2m", nfe, "vp-leading", None),
                 ("diffusio unipc (karras)", "unipc", nfe, "karras", None),
                 ("diffusio heun (karras)", "heun", heun_steps(nfe), "karras", None)]
    if args.early_stop:
        plan.append((f"diffusio dpmpp-2m (karras) + early stop {args.early_stop}", "dpmpp-2m",
                     max(args.nfe), "karras", args.early_stop))
    if args.rows:
        plan = [p for p in plan if any(part in p[0] for part in args.rows)]
    rows = []
    for name, kind, steps, schedule, early in plan:
        if kind in ("dpmsolver++2m", "ddim"):
            images, nfe, seconds = diffusers_rows(folder, kind, steps, n, args.seed, args.batch)
        else:
            images, nfe, seconds = diffusio_rows(gen, kind, steps, n, args.seed, schedule, early)
        m = feature_metrics(real, clf.features(images), 3, args.seed)
        row = {"method": name, "steps": steps, "nfe": nfe, "fd": m["fd"], "floor": floor["fd"],
               "precision": m["precision"], "recall": m["recall"], "kid": m["kid"], "seconds": seconds}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def table(rows: list[dict], n: int) -> str:
    lines = [f"n = {n} samples per row; FD on the shipped Fashion-MNIST classifier's features vs {n} test images",
             "", "| method | steps | NFE | FD | floor | precision | recall | seconds |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        nfe = f"{r['nfe']:g}" if not float(r["nfe"]).is_integer() else str(int(r["nfe"]))
        lines.append(f"| {r['method']} | {r['steps']} | {nfe} | {r['fd']:.2f} | {r['floor']:.2f} | "
                     f"{r['precision']:.3f} | {r['recall']:.3f} | {r['seconds']:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="/work/runs/diffusers-fmnist")
    p.add_argument("--minutes", type=float, default=35.0, help="training wall-clock minutes in all")
    p.add_argument("--resume", action="store_true", help="continue the checkpoint in --out")
    p.add_argument("--skip-train", action="store_true", help="only sample and evaluate OUT/pipeline")
    p.add_argument("--skip-eval", action="store_true", help="only train")
    p.add_argument("--checkpoint-minutes", type=float, default=3.0)
    p.add_argument("--train-steps", type=int, default=None, help="cosine schedule length (default: estimated)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--channels", type=int, nargs="+", default=[32, 64, 64])
    p.add_argument("--layers-per-block", type=int, default=1)
    p.add_argument("--no-flip", dest="flip", action="store_false")
    p.add_argument("--classes", type=int, default=0, help="class-conditional on the 10 labels (10) or not (0)")
    p.add_argument("--snapshots", type=float, nargs="*", default=[],
                   help="also save the EMA pipeline as OUT/at-<M>min after each of these training minutes")
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("-n", type=int, default=1000, help="samples per row (and real images)")
    p.add_argument("--nfe", type=int, nargs="+", default=[10, 20])
    p.add_argument("--early-stop", type=float, default=0.1, help="tolerance of the early-stopping row (0: none)")
    p.add_argument("--batch", type=int, default=250, help="diffusers sampling batch")
    p.add_argument("--rows", nargs="+", default=None,
                   help="only the rows whose method contains one of these strings (e.g. vp-leading)")
    p.add_argument("--tag", default="", help="suffix of the table and rows files (table-TAG.md)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    if not args.skip_train:
        state = train(args)
        (Path(args.out) / "train_summary.json").write_text(json.dumps(
            {"steps": state["step"], "minutes": state["seconds"] / 60, "batch_size": args.batch_size,
             "lr": args.lr, "channels": args.channels, "layers_per_block": args.layers_per_block,
             "losses": state["losses"]}, indent=1))
    if args.skip_eval:
        return
    rows = bench(args)
    text = table(rows, args.n)
    print(text, flush=True)
    tag = f"-{args.tag}" if args.tag else ""
    (Path(args.out) / f"table{tag}.md").write_text(text + "\n")
    (Path(args.out) / f"rows{tag}.json").write_text(json.dumps(rows, indent=1))
    print(f"total {(time.perf_counter() - t0) / 60:.1f} minutes", flush=True)


if __name__ == "__main__":
    main()
