"""Samplers side by side: ours vs diffusers' schedulers, on the shipped model, in one run.

For each NFE budget and sampler: FD (shipped classifier features, vs the test set), class accuracy
(label-conditioned samples, 10 classes balanced) and wall time per 64 images; plus early-stopping and
adaptive rows, and the per-step overhead of each sampler (everything but the network).

    python bench/samplers.py --n 500 --out docs/img/samplers.png

diffusers' schedulers drive the same network through an adapter: EDMEuler / EDMDPMSolverMultistep
use our EDM preconditioning natively; the VP schedulers (DDIM, DDPM, Euler, Heun, DPM++, UniPC) see
it as a discrete-time eps-prediction model on the standard linear-beta DDPM schedule.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from diffusio.generative import Generator
from diffusio.generative.evaluation.classifier import load_classifier
from diffusio.generative.data.datasets import load_dataset
from diffusio.generative.core.denoiser import vp_alphas_cumprod
from diffusio.generative.core.guidance import CFGDenoiser
from diffusio.generative.evaluation.metrics import frechet_distance
from diffusio.generative.core.sampling import sample

NFES = (5, 10, 20, 50)
OURS = ["euler", "heun", "dpmpp-2m", "unipc", "ddim", "ddpm"]  # on the model's default Karras schedule
# the multistep solvers again on other sigma schedules: Karras' rho = 7 crowds steps near sigma_min,
# which few-step sampling cannot afford
# (vp-trailing: the DDPM timesteps 999, 799, ... that diffusers' multistep solvers use by default)
SCHEDULE_VARIANTS = [("dpmpp-2m", "vp-trailing"), ("unipc", "vp-trailing")]
PEERS = {"DDIM": ("DDIMScheduler", {"clip_sample": False, "timestep_spacing": "trailing", "set_alpha_to_one": True}),
         "DDPM": ("DDPMScheduler", {"clip_sample": False, "timestep_spacing": "trailing"}),
         "Euler": ("EulerDiscreteScheduler", {"timestep_spacing": "trailing"}),
         "Heun": ("HeunDiscreteScheduler", {"timestep_spacing": "trailing"}),
         "DPM++2M": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
         "UniPC": ("UniPCMultistepScheduler", {}),
         "EDM-Euler": ("EDMEulerScheduler", {}),
         "EDM-DPM++2M": ("EDMDPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2})}


def steps_for(sampler: str, nfe: int) -> int:
    return (nfe + 1) // 2 if sampler.lower().startswith(("heun",)) else nfe


class VPView:
    """Our (guided) denoiser seen as a DDPM eps-model eps(x_t, t) on the linear-beta schedule."""

    def __init__(self, guided, cond):
        self.guided, self.cond = guided, cond
        abar = vp_alphas_cumprod(1000)
        self.sigmas = ((1 - abar) / abar).sqrt()

    def __call__(self, x_t, t):
        t = float(t)
        lo, w = int(math.floor(t)), t - math.floor(t)
        ls = self.sigmas.log()
        sigma = float((ls[lo] * (1 - w) + ls[min(lo + 1, 999)] * w).exp())
        x = x_t * math.sqrt(1 + sigma ** 2)
        return (x - self.guided(x, torch.tensor(sigma), self.cond)) / sigma


@torch.no_grad()
def run_peer(name, gen: Generator, cond, n, nfe, seed, guidance):
    import diffusers

    cls, kw = PEERS[name]
    denoiser = gen.denoiser
    guided = CFGDenoiser(denoiser, guidance)
    steps = steps_for(name, nfe)
    if name.startswith("EDM"):
        sched = getattr(diffusers, cls)(sigma_min=denoiser.sigma_min, sigma_max=denoiser.sigma_max,
                                        sigma_data=0.5, rho=7.0, **kw)
    else:
        sched = getattr(diffusers, cls)(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02,
                                        beta_schedule="linear", **kw)
    sched.set_timesteps(steps)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((n, 1, 28, 28), generator=g) * sched.init_noise_sigma
    view = VPView(guided, cond)
    import inspect

    step_kw = {"generator": g} if "generator" in inspect.signature(sched.step).parameters else {}
    for t in sched.timesteps:
        inp = sched.scale_model_input(x, t)
        if name.startswith("EDM"):
            sigma = float(sched.sigmas[sched.step_index if sched.step_index is not None else 0])
            # raw network output F with guidance: D is affine in F, so guide D and invert the output scaling
            d = guided(x, torch.tensor(sigma), cond)
            c_skip = 0.25 / (sigma ** 2 + 0.25)
            c_out = sigma * 0.5 / math.sqrt(sigma ** 2 + 0.25)
            out = (d - c_skip * x) / c_out
        else:
            out = view(inp, t)
        x = sched.step(out, t, x, **step_kw).prev_sample
    return x.clamp(-1, 1)


def score(images, labels, clf, real_feats):
    feats = clf.features(images.numpy())
    acc = float((clf.predict(images.numpy()) == labels).mean())
    return frechet_distance(real_feats, feats), acc


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def overhead_fraction(gen, sampler, steps):
    """Share of wall time not spent in the network: run once with the net, once with a free denoiser."""
    image = gen.model.config["image"]
    _, with_net = timed(lambda: sample(gen.denoiser, 64, image, steps=steps, sampler=sampler, seed=0))
    free = type("Free", (), {"sigma_min": gen.denoiser.sigma_min, "sigma_max": gen.denoiser.sigma_max,
                             "__call__": lambda self, x, s, c=None: x * 0.5})()
    _, without = timed(lambda: sample(free, 64, image, steps=steps, sampler=sampler, seed=0))
    return without / with_net


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--nfe", type=int, nargs="*", default=list(NFES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--out", default="samplers.png")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    gen = Generator.load("fashion")
    guidance = gen.defaults["guidance"]
    clf = load_classifier("fashion-mnist")
    test = load_dataset("fashion-mnist", "test")
    rng = np.random.default_rng(0)
    real = clf.features(test.images[rng.choice(len(test), args.n, replace=False)])
    train = load_dataset("fashion-mnist", "train")
    floor_fd = frechet_distance(real, clf.features(train.images[rng.choice(len(train), args.n, replace=False)]))
    labels = np.arange(args.n) % 10
    cond = gen.condition(args.n, label=labels.tolist())
    image = gen.model.config["image"]
    rows = []

    def ours(sampler, steps, **kw):
        stats = {}
        imgs, sec = timed(lambda: sample(gen.denoiser, args.n, image, cond=cond, steps=steps, sampler=sampler,
                                         guidance=guidance, seed=args.seed, stats=stats, **kw))
        return imgs, sec, stats["nfe"]

    for nfe in args.nfe:
        for s in OURS:
            imgs, sec, used = ours(s, steps_for(s, nfe))
            rows.append(("ours", s, nfe, used, *score(imgs, labels, clf, real), sec / args.n * 64))
            print(*rows[-1], flush=True)
        for s, schedule in SCHEDULE_VARIANTS:
            imgs, sec, used = ours(s, nfe, schedule=schedule)
            rows.append(("ours", f"{s} {schedule}", nfe, used, *score(imgs, labels, clf, real), sec / args.n * 64))
            print(*rows[-1], flush=True)
        if not args.no_peers:
            for name in PEERS:
                imgs, sec = timed(lambda: run_peer(name, gen, cond, args.n, nfe, args.seed, guidance))
                used = steps_for(name, nfe) * (2 if name.endswith("Heun") else 1) - (1 if name.endswith("Heun") else 0)
                rows.append(("diffusers", name, nfe, used, *score(imgs, labels, clf, real), sec / args.n * 64))
                print(*rows[-1], flush=True)
    for tol in (0.03, 0.05, 0.08):
        imgs, sec, used = ours("dpmpp-2m", 20, early_stop=tol)
        rows.append(("ours", f"dpmpp-2m early-stop {tol}", 20, used, *score(imgs, labels, clf, real), sec / args.n * 64))
        print(*rows[-1], flush=True)
    for rtol in (0.05, 0.1, 0.2):
        imgs, sec, used = ours("adaptive", 20, options={"rtol": rtol})
        rows.append(("ours", f"adaptive rtol {rtol}", 0, used, *score(imgs, labels, clf, real), sec / args.n * 64))
        print(*rows[-1], flush=True)

    print(f"\nn = {args.n} samples per row, guidance {guidance}; real-vs-real FD floor {floor_fd:.3f}")
    print(f"| impl | sampler | NFE budget | NFE used | FD | FD / floor | class acc | s per 64 images |")
    print("|---|---|---|---|---|---|---|---|")
    for impl, s, nfe, used, fd, acc, t64 in rows:
        print(f"| {impl} | {s} | {nfe or '-'} | {used} | {fd:.3f} | {fd / floor_fd:.1f} | {acc:.3f} | {t64:.2f} |")
    print("\nper-step overhead of our samplers (share of wall time outside the network, 64 images, 20 steps):")
    for s in OURS:
        print(f"  {s:<10} {overhead_fraction(gen, s, 20):.2%}")
    plot(rows, floor_fd, args.out)
    print(f"plot: {args.out}")


def plot(rows, floor, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for impl in ("ours", "diffusers"):
        names = sorted({r[1] for r in rows if r[0] == impl and r[2]})
        for name in names:
            pts = sorted((r[3], r[4]) for r in rows if r[0] == impl and r[1] == name and r[2])
            ax.plot(*zip(*pts), marker="o" if impl == "ours" else "x", ls="-" if impl == "ours" else ":",
                    label=f"{impl}: {name}")
    extra = [r for r in rows if not r[2] or "early" in r[1]]
    if extra:
        ax.scatter([r[3] for r in extra], [r[4] for r in extra], marker="*", s=80, c="k", label="early stop / adaptive")
    ax.axhline(floor, color="grey", ls="--", label="real-vs-real floor")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("network evaluations (NFE)")
    ax.set_ylabel("FD (classifier features)")
    ax.legend(fontsize=6, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)


if __name__ == "__main__":
    main()
