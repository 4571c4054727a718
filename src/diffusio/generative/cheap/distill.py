"""Distillation: a student that samples in 1, 2 or 4 network calls, learned from a guided teacher.

Method: trajectory consistency distillation.  The teacher (with its classifier-free guidance)
solves the probability-flow ODE from noise with DPM-Solver++(2M); every point ``x_i`` of every
trajectory, at noise level ``sigma_i``, is paired with the trajectory's end ``x_0``.  The student
(initialised from the teacher) learns the *consistency function* ``f(x_i, sigma_i) = x_0`` by
regression (Luhman & Luhman 2021 used the pair (noise, image); the consistency-model view of Song
et al. 2023 extends it to every point of the trajectory).  Sampling then is Song et al.'s
multistep consistency sampling (``samplers.sample_consistency``): jump to ``x_0``, re-noise to
the next sigma, jump again.  The guidance is baked in, so one student call replaces two teacher
calls.

>>> cfg = DistillConfig(teacher="fashion", out="/tmp/diffusio-doc-student", trajectories=64,
...                     train_steps=2, quiet=True)
>>> student_dir = distill(cfg)                                  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from diffusio._io import atomic_save_json
from diffusio.errors import UsageError
from diffusio.generative.checkpoint import files as ckpt
from diffusio.generative.checkpoint.models import build_denoiser_from_config, load_guide, load_model
from diffusio.generative.core.guidance import limited_interval
from diffusio.generative.core.sampling import initial_noise, sample
from diffusio.generative.core.schedules import get_sigmas_karras
from diffusio.generative.training.loop import run_loop
from diffusio.generative.training.losses import (ema_decay_at, ema_update, optimizer_tensors,
                                                 restore_optimizer)

STUDENT_STEPS = (1, 2, 4)
CHUNK = 256  # teacher trajectories per file: the unit of resume


@dataclass
class DistillConfig:
    teacher: str
    out: str
    trajectories: int = 8192      # teacher ODE solutions to learn from
    teacher_steps: int = 12       # DPM-Solver++(2M) steps per trajectory (the student's sigma grid)
    guidance: float | None = None  # teacher guidance (default: the teacher's own)
    train_steps: int = 3000
    batch_size: int = 64
    lr: float = 2e-4
    ema_decay: float = 0.999
    seed: int = 0
    every: int = 250
    minutes: float = 0.0
    threads: int = 0
    quiet: bool = False

    def validate(self) -> None:
        for name in ("trajectories", "teacher_steps", "train_steps", "batch_size"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.teacher_steps < 4:
            raise UsageError(f"--teacher-steps must be >= 4 to leave a grid for 4-step sampling, got {self.teacher_steps}")
        if not self.lr > 0:
            raise UsageError(f"--lr must be > 0, got {self.lr}")
        if self.every < 0:  # found by the fuzz (issue 26): -2 exited 0
            raise UsageError(f"every must be >= 0 (training steps between checkpoints; 0: only at the end), "
                             f"got {self.every}")
        if self.threads < 0:
            raise UsageError(f"threads must be >= 0 (0: torch's default), got {self.threads}")
        if self.guidance is not None and not self.guidance >= 0:
            raise UsageError(f"--guidance must be >= 0, got {self.guidance}")


# ---------------------------------------------------------------- conditions
def condition_bank(teacher) -> torch.Tensor | None:
    """Conditions to distil over: the training phrasings of every class, the class vectors, and the null condition."""
    kind = teacher.cond_kind
    if kind == "none":
        return None
    rows = []
    if kind == "text" and teacher.class_names:
        from diffusio.generative.conditioning.captions import FASHION_SYNONYMS, class_captions
        from diffusio.generative.conditioning.text import encode

        synonyms = FASHION_SYNONYMS if teacher.config.get("data", {}).get("name") == "fashion-mnist" else None
        captions = [c for name in teacher.class_names for c in class_captions(name, synonyms)]
        rows.append(torch.from_numpy(encode(captions)))
    if teacher.class_embeddings is not None:
        rows.append(teacher.class_embeddings.float())
    if not rows:
        raise UsageError(f"cannot distil a {kind}-conditioned model without class names or class embeddings; "
                         "train it with classes or distil an unconditional model")
    return torch.cat(rows)


def draw_conditions(bank: torch.Tensor | None, n: int, gen: torch.Generator, null_share: float = 0.1):
    if bank is None:
        return None
    cond = bank[torch.randint(0, len(bank), (n,), generator=gen)]
    keep = torch.rand(n, generator=gen) >= null_share  # the null condition = unconditional sampling
    return cond * keep[:, None].to(cond.dtype)


# ---------------------------------------------------------------- stage 1: teacher trajectories
def teacher_sigmas(denoiser, steps: int) -> torch.Tensor:
    return get_sigmas_karras(steps, denoiser.sigma_min, denoiser.sigma_max)


@torch.no_grad()
def teacher_trajectories(teacher, n: int, cond: torch.Tensor | None, sigmas: torch.Tensor, guidance: float,
                         seed: int, guidance_interval: tuple[float, float] | None = None,
                         autoguidance: tuple | None = None) -> torch.Tensor:
    """States of the guided teacher's ODE solution at every sigma: ``[n, len(sigmas), C, H, W]``.

    ``guidance_interval``: the noise levels where guidance applies, as the teacher samples (its
    ``sampling.guidance_interval``); outside it the teacher runs unguided.  ``autoguidance``:
    (guide denoiser, scale[, interval]), as the teacher samples (its ``sampling.autoguidance``, ``guide``
    and ``autoguidance_interval``).

    The last state (sigma = 0) is the ODE's end point, not clamped to [-1, 1]: clamping would ask the
    student for jumps its preconditioning cannot make at small sigma.
    """
    states = []
    x, _ = initial_noise(n, teacher.config["image"], float(sigmas[0]), seed)
    end = sample(teacher.denoiser, n, teacher.config["image"], cond=cond, sampler="dpmpp-2m", guidance=guidance,
                 seed=seed, sigmas=sigmas, x=x.clone(), callback=lambda info: states.append(info["x"].clone()),
                 clamp=False, guidance_interval=guidance_interval, autoguidance=autoguidance)
    return torch.stack([x, *states[:-1], end], dim=1)


# ---------------------------------------------------------------- the student
def student_sigmas(grid: torch.Tensor) -> dict[str, list[float]]:
    """Sampling sigmas of the student for 1, 2 and 4 steps, picked from the training grid.

    Multistep consistency sampling re-noises to each intermediate sigma; the picks split the
    grid at even fractions, which on a Karras grid lands near sigma ~ 2 for the 2-step sampler.
    """
    inner = grid[:-1].tolist()  # drop the final 0
    out = {}
    for k in STUDENT_STEPS:
        picks = [inner[round(j * (len(inner) - 1) / (k + 1))] for j in range(k)] if k > 1 else [inner[0]]
        out[str(k)] = [float(s) for s in picks] + [0.0]
    return out


def consistency_loss(student, x, sigma, target, cond):
    """Unit-variance regression of the student's clean estimate onto the trajectory's end (EDM weighting)."""
    denoised = student(x, sigma, cond)
    weight = student.loss_weight(sigma)[:, None, None, None]
    return (weight * (denoised - target) ** 2).mean()


class Distiller:
    def __init__(self, cfg: DistillConfig, resume: bool = False):
        cfg.validate()
        self.cfg, self.out = cfg, Path(cfg.out)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.teacher = load_model(cfg.teacher)  # before creating --out: a bad teacher leaves nothing behind
        pre = self.teacher.config.get("preconditioning", {}).get("kind")
        if pre != "edm":
            raise UsageError(f"distillation needs an EDM-preconditioned teacher; {cfg.teacher} uses {pre!r}. "
                             "Train one with --precond edm")
        teacher_sampling = self.teacher.config.get("sampling", {})
        self.guidance = teacher_sampling.get("guidance", 1.0) if cfg.guidance is None else cfg.guidance
        # guided only where the teacher is: guidance at every noise level costs the variety it keeps
        interval = teacher_sampling.get("guidance_interval")
        self.guidance_interval = tuple(interval) if interval else None
        scale = teacher_sampling.get("autoguidance", 1.0)  # autoguided as the teacher samples, if it does
        where = limited_interval(teacher_sampling.get("autoguidance_interval"), "the teacher's autoguidance_interval")
        self.autoguide = None if scale == 1.0 else (load_guide(self.teacher, teacher_sampling.get("guide")).denoiser,
                                                    scale, where)
        guide = self.teacher.config.get("class_guide")
        if guide is not None and not (Path(self.teacher.path) / guide.get("file", "class_guide.safetensors")).is_file():
            raise UsageError(f"{cfg.teacher}'s config names a class guide that its folder lacks; the student copies it: "
                             "train it again with `diffusio class-guide MODEL`")
        self._prepare_out(resume)
        self.sigmas = teacher_sigmas(self.teacher.denoiser, cfg.teacher_steps)
        self.bank = condition_bank(self.teacher)
        torch.manual_seed(cfg.seed)
        self.student = build_denoiser_from_config(self.teacher.config)
        self.student.net.load_state_dict(self.teacher.denoiser.net.state_dict())
        self.ema = build_denoiser_from_config(self.teacher.config)
        self.ema.net.load_state_dict(self.teacher.denoiser.net.state_dict())
        self.ema.requires_grad_(False).eval()
        self.opt = torch.optim.Adam(self.student.parameters(), lr=cfg.lr)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.step, self.losses, self.wall = 0, [], 0.0
        if resume and (self.out / "train_state.json").exists():
            self._load_state()

    def _prepare_out(self, resume: bool) -> None:
        marker = self.out / "distill.json"
        if resume and not marker.exists():
            raise UsageError(f"--resume: no distillation to resume in {self.out}; drop --resume to start one")
        if not resume and marker.exists():
            raise UsageError(f"{self.out} already holds a distillation; add --resume or choose another --out")
        if not resume and self.out.is_dir() and any(self.out.iterdir()):
            raise UsageError(f"{self.out} is not empty (it may hold a training run or a model); distilling there "
                             "would overwrite it: choose a new --out")
        if resume:
            saved = json.loads(marker.read_text())
            mismatched = [k for k in ("teacher", "trajectories", "teacher_steps", "guidance", "seed")
                          if saved.get(k) != asdict(self.cfg).get(k)]
            if mismatched:
                raise UsageError(f"--resume: {self.out} was started with other {', '.join(mismatched)}; "
                                 "use the same settings")
        try:
            (self.out / "trajectories").mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UsageError(f"cannot create {self.out}: {err}; choose a writable --out") from err
        atomic_save_json(marker, asdict(self.cfg))

    # -------------------------------------------------------- stage 1
    def trajectories(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Generate (or reload) all teacher trajectories, one resumable file per chunk."""
        chunks = range(math.ceil(self.cfg.trajectories / CHUNK))
        states, conds = [], []
        bar = tqdm(total=self.cfg.trajectories, desc="teacher", unit="traj", disable=self.cfg.quiet)
        for k in chunks:
            path = self.out / "trajectories" / f"chunk{k:04d}.safetensors"
            n = min(CHUNK, self.cfg.trajectories - k * CHUNK)
            if path.exists():
                t = ckpt.load_tensors(path)
            else:
                chunk_seed = self.cfg.seed * 7919 + k
                cond = draw_conditions(self.bank, n, torch.Generator().manual_seed(chunk_seed))
                traj = teacher_trajectories(self.teacher, n, cond, self.sigmas, self.guidance, chunk_seed,
                                            self.guidance_interval, self.autoguide)
                t = {"x": traj.half()}
                if cond is not None:
                    t["cond"] = cond
                ckpt.atomic_save_tensors(path, t)
            states.append(t["x"])
            conds.append(t.get("cond"))
            bar.update(n)
        bar.close()
        return torch.cat(states), (torch.cat(conds) if conds[0] is not None else None)

    # -------------------------------------------------------- stage 2
    def train_step(self, states: torch.Tensor, conds: torch.Tensor | None) -> float:
        cfg = self.cfg
        j = torch.randint(0, len(states), (cfg.batch_size,), generator=self.gen)
        i = torch.randint(0, len(self.sigmas) - 1, (cfg.batch_size,), generator=self.gen)
        x, target = states[j, i].float(), states[j, -1].float()
        loss = consistency_loss(self.student, x, self.sigmas[i], target, None if conds is None else conds[j])
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.student.parameters(), 1.0)
        self.opt.step()
        self.step += 1
        ema_update(self.ema, self.student, ema_decay_at(self.step, cfg.ema_decay))
        return loss.item()

    def run(self) -> Path:
        states, conds = self.trajectories()
        self.student.train()
        start = self.step
        run_loop(self, lambda: self.train_step(states, conds), self.save, total=self.cfg.train_steps,
                 every=self.cfg.every, minutes=self.cfg.minutes, desc="distil", quiet=self.cfg.quiet)
        if self.step > start or not (self.out / "model.safetensors").exists():
            self.save()
        return self.out

    # -------------------------------------------------------- checkpoints
    def student_config(self) -> dict:
        # the teacher's own sampling recipes (its synthesis settings name its guide) do not carry over
        config = {k: v for k, v in self.teacher.config.items()
                  if k not in ("format", "version", "training", "synthesis")}
        config["sampling"] = {"sampler": "consistency", "steps": 4, "schedule": "distilled", "guidance": 1.0,
                              "sigmas": student_sigmas(self.sigmas)}
        if "class_guide" in config:  # redraws and class bars as the teacher's, read by its guide (copied by save)
            teacher = self.teacher.config.get("sampling", {})
            config["sampling"]["redraws"] = teacher.get("redraws", 0)
            if teacher.get("redraw_below"):
                config["sampling"]["redraw_below"] = dict(teacher["redraw_below"])
            # not its nudges: classifier guidance through a 4-step consistency sampler cost the shipped
            # student FD (1.707 -> 1.841 at n = 1,000; docs/benchmarks.md), so a student redraws from new noise
        config["distillation"] = {**asdict(self.cfg), "guidance": self.guidance,
                                  "guidance_interval": self.guidance_interval, "steps_done": self.step,
                                  "autoguidance": None if self.autoguide is None else {
                                      "scale": self.autoguide[1], "guide": self.teacher.config["sampling"]["guide"],
                                      "interval": self.autoguide[2]},
                                  "wall_seconds": round(self.wall, 1), "method": "trajectory consistency",
                                  "teacher_sampling": self.teacher.config.get("sampling", {})}
        return config

    def save(self) -> None:
        state = {f"net.{k}": v for k, v in self.student.net.state_dict().items()}
        state.update({f"ema.{k}": v for k, v in self.ema.net.state_dict().items()})
        state.update(optimizer_tensors(self.opt, self.student))
        state["rng.data"] = self.gen.get_state()
        tensors = {f"net.{k}": v for k, v in self.ema.net.state_dict().items()}
        if self.teacher.class_embeddings is not None:
            tensors["cond.class_embeddings"] = self.teacher.class_embeddings
        ckpt.save_model(self.out, self.student_config(), tensors)
        copy_class_guide(self.teacher, self.out)
        ckpt.save_run_state(self.out, self.step, state, {"wall_seconds": self.wall, "losses": self.losses})

    def _load_state(self) -> None:
        meta, tensors = ckpt.load_run_state(self.out)
        ckpt.load_state_into(self.student.net, tensors, "net.", self.out)
        ckpt.load_state_into(self.ema.net, tensors, "ema.", self.out)
        restore_optimizer(self.opt, self.student, tensors)
        self.gen.set_state(tensors["rng.data"])
        self.step, self.losses, self.wall = meta["step"], meta["losses"], meta["wall_seconds"]


def copy_class_guide(teacher, out: Path) -> None:
    """The teacher's class guide file, if it has one, into the student's folder: its check classifier
    reads finished images (``redraws``) whichever network drew them."""
    entry = teacher.config.get("class_guide")
    if entry is not None:
        name = entry.get("file", "class_guide.safetensors")
        shutil.copyfile(Path(teacher.path) / name, Path(out) / name)


def distill(cfg: DistillConfig, resume: bool = False) -> Path:
    """Distil (or resume distilling) a teacher; returns the student's directory, loadable by ``Generator.load``."""
    return Distiller(cfg, resume).run()
