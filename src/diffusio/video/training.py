"""Train a text-to-video model on Moving Fashion-MNIST (drawn fresh every step) or a folder of clips.

The image stack's training pieces, unchanged: EDM's loss, Adam with warm-up, an EMA of the
weights, the shared loop (progress bar, checkpoints every ``every`` steps, a wall-time budget, a
clean stop on SIGTERM) and resumable safetensors states.  As in Video Diffusion Models (Ho et al.
2022) a share ``image_fraction`` of the steps trains on still frames captioned as images, which
the space-time net sees as one-frame clips; captions are dropped with probability
``cond_dropout`` so classifier-free guidance has an unconditional model to push against.

On CPUs with bfloat16 matrix units (AMX or AVX-512 BF16 in ``/proc/cpuinfo``) the forward and
backward passes run under bfloat16 autocast (about twice as fast, measured in
docs/benchmarks-video.md); weights, optimiser and sampling stay float32.

>>> import tempfile
>>> gen = train_video(tempfile.mkdtemp(), steps=2, batch_size=2, base=8, mults=(1, 2), frames=4, quiet=True)
>>> gen.generate("a bag moving up", frames=4, steps=2).shape
(1, 4, 32, 32, 1)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from diffusio._precision import bf16_autocast, use_bf16
from diffusio.errors import UsageError
from diffusio.generative.checkpoint.files import read_run_meta
from diffusio.generative.conditioning.text import ENCODER_NAME, EMBED_DIM, encode
from diffusio.generative.training.fitting import (Progress, check_run_folder, check_same_init, load_fit_state,
                                                  optimiser_step, save_fit_state)
from diffusio.generative.training.loop import run_loop
from diffusio.generative.training.losses import EDM_P_MEAN, edm_loss
from diffusio.generative.training.schedule import learning_rate
from diffusio.video.clips import all_captions, moving_clips, still_frames
from diffusio.video.generator import KIND, VideoGenerator, build_denoiser, check_count, to_tensor

BUILTIN = {"moving-fashion": "fashion-mnist", "moving-mnist": "mnist5k"}


@dataclass
class MovingData:
    """Fresh Moving Fashion-MNIST (or MNIST) clips every step, seeded by (seed, step)."""

    source: str
    frames: int
    size: int
    object_size: int
    objects: int

    def clips(self, n: int, seed: int) -> tuple[np.ndarray, list[str] | None]:
        data = moving_clips(n, frames=self.frames, size=self.size, object_size=self.object_size,
                            objects=self.objects, source=self.source, seed=seed)
        return data.clips, data.captions

    def stills(self, n: int, seed: int) -> tuple[np.ndarray, list[str] | None]:
        frames, captions, _ = still_frames(n, size=self.size, object_size=self.object_size, source=self.source,
                                           seed=seed)
        return frames, captions

    def summary(self) -> dict:
        return {"name": f"moving-{'fashion' if self.source == 'fashion-mnist' else 'mnist'}", "source": self.source,
                "object_size": self.object_size, "objects": self.objects}


@dataclass
class FolderData:
    """A user's clips (N, T, H, W, C) with optional captions; stills are single frames of them."""

    array: np.ndarray
    captions: list[str] | None
    name: str

    def clips(self, n: int, seed: int) -> tuple[np.ndarray, list[str] | None]:
        rows = np.random.default_rng(seed).integers(len(self.array), size=n)
        return self.array[rows], None if self.captions is None else [self.captions[i] for i in rows]

    def stills(self, n: int, seed: int) -> tuple[np.ndarray, list[str] | None]:
        rng = np.random.default_rng(seed)
        rows, frames = rng.integers(len(self.array), size=n), rng.integers(self.array.shape[1], size=n)
        return self.array[rows, frames][:, None], None  # a frame does not show the caption's motion

    def summary(self) -> dict:
        return {"name": self.name, "n": len(self.array), "has_captions": self.captions is not None}


def train_video(out: str | Path, data: str = "moving-fashion", *, captions: str | Path | None = None,
                frames: int = 16, size: int = 32, object_size: int = 16, objects: int = 1,
                steps: int = 20000, minutes: float | None = None, batch_size: int = 8, image_fraction: float = 0.25,
                lr: float = 1e-3, warmup: int = 200, ema_decay: float = 0.999, cond_dropout: float = 0.1,
                base: int = 16, mults: tuple[int, ...] = (1, 2, 4), time_attn_levels: tuple[int, ...] | None = None,
                seed: int = 0, every: int = 250, resume: bool = False, bf16: str = "auto",
                init: str | Path | None = None, frame_cond: bool = False, noise_shift: float = 0.0,
                whiten_cond: bool = False, quiet: bool = False) -> VideoGenerator:
    """Train into folder ``out`` (it receives ``config.json``, ``model.safetensors`` and a resumable
    training state); ``data``: ``moving-fashion``, ``moving-mnist`` or a folder of GIF/MP4 clips
    (``captions``: a CSV of ``file,caption``).  ``resume`` continues the run in ``out``.

    ``init``: continue a trained video model (shipped name or run folder) instead of starting from
    random weights; its network replaces ``base``, ``mults`` and ``time_attn_levels``, and its clips
    must have this run's size and channels.  ``steps`` and ``minutes`` count this run only; the
    config records the parent (``init``), and a run started from one resumes only with the same.

    ``frame_cond``: also give every frame the caption beside its position
    (:class:`~diffusio.video.net.FrameCondition`), the path on which text can steer motion.  With
    ``init`` it is added to the parent's network at zero, so training starts from the parent exactly.

    ``whiten_cond``: also give the network the caption whitened on the training captions
    (:class:`~diffusio.video.net.CaptionWhitening`), where the motion weighs as much as the object.
    With ``init`` it is added to the parent's network at zero, like ``frame_cond``.

    ``noise_shift``: clips draw their training noise level ``noise_shift`` higher in log sigma than
    still frames do (EDM's log-normal, whose mean suits single images).  A clip holds ``frames``
    correlated copies of its object, so a noise level that hides one frame's object does not hide the
    clip's, and where the object goes is decided at higher noise than images need (the resolution
    shift of Hoogeboom et al. 2023 and Esser et al. 2024; 0.5 ln(frames) treats the frames as copies).
    """
    if isinstance(noise_shift, bool) or not isinstance(noise_shift, (int, float)) or not 0 <= noise_shift <= 4:
        raise UsageError(f"noise_shift must be a number of log sigma in [0, 4] (0: the images' levels), "
                         f"got {noise_shift!r}")
    out = check_run_folder(out, resume)
    _check_settings(frames=frames, size=size, steps=steps, batch_size=batch_size, base=base, every=every,
                    mults=mults, image_fraction=image_fraction, cond_dropout=cond_dropout, bf16=bf16)
    parent = VideoGenerator.load(init) if init is not None else None  # a wrong name before any data is made
    started = check_same_init(out, init) if resume else None
    source = _data(data, captions, frames, size, object_size, objects)
    settings = dict(data=data, frames=frames, size=size, object_size=object_size, objects=objects,
                    batch_size=batch_size, image_fraction=image_fraction, lr=lr, warmup=warmup, ema_decay=ema_decay,
                    cond_dropout=cond_dropout, seed=seed, steps=steps, every=every)
    if noise_shift:  # recorded only when used, so runs from before the option still resume
        settings["noise_shift"] = noise_shift
    config = _config(source, settings, base, mults, time_attn_levels, frame_cond)
    if whiten_cond:
        config["net"]["whiten_cond"] = True
    if parent is not None:
        _adopt(config, parent, init, frame_cond, whiten_cond)
        if started:
            config["init"] = started  # the parent as it was when the run began
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        denoiser = build_denoiser(config)
    if parent is not None:
        _load_parent(denoiser.net, parent)
    if whiten_cond and not resume and not (parent is not None and parent.config["net"].get("whiten_cond")):
        denoiser.net.whiten_embed[0].fit(_embed(_whitening_captions(source), {}, 0).float())
    ema = build_denoiser(config)
    ema.load_state_dict(denoiser.state_dict())
    ema.requires_grad_(False).eval()
    opt = torch.optim.Adam(denoiser.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    run = Progress()
    if resume:
        _check_same_net(out, config["net"])
        run = load_fit_state(out, denoiser.net, ema.net, opt, gen, config,
                             lambda saved: saved.get("data") == config["data"])
    bf16_on = use_bf16(bf16)
    config["training"] = {"bf16": bf16_on}
    embeddings: dict[str, np.ndarray] = {}

    def train_step() -> float:
        for group in opt.param_groups:
            group["lr"] = learning_rate(run.step, lr, warmup=warmup, total=steps)
        step_seed = int(torch.randint(0, 2 ** 62, (1,), generator=gen))
        still = float(torch.rand(1, generator=gen)) < image_fraction
        # a still batch has as many frames as a clip batch, so every step costs about the same
        pixels, texts = source.stills(batch_size * frames, step_seed) if still else source.clips(batch_size, step_seed)
        x0 = to_tensor(pixels)
        cond = _embed(texts, embeddings, len(x0))
        keep = (torch.rand(len(x0), generator=gen) >= cond_dropout).float()[:, None]
        with bf16_autocast(bf16_on):
            loss = edm_loss(denoiser, x0, cond * keep, gen, p_mean=EDM_P_MEAN + (0.0 if still else noise_shift))
        return optimiser_step(loss.float(), opt, denoiser, ema, run, ema_decay)

    def checkpoint() -> None:
        _save(out, ema, config, run)
        save_fit_state(out, run, denoiser.net, ema.net, opt, gen, config)

    denoiser.train()
    run_loop(run, train_step, checkpoint, total=steps, every=every, minutes=minutes or 0, desc="train video",
             quiet=quiet)
    checkpoint()
    return VideoGenerator(ema, config, out)


def _check_settings(*, frames: int, size: int, steps: int, batch_size: int, base: int, every: int,
                    mults: tuple[int, ...], image_fraction: float, cond_dropout: float, bf16: str) -> None:
    """Refuse bad settings before any data is made or memory taken."""
    for name, value in (("frames", frames), ("size", size), ("steps", steps), ("batch_size", batch_size),
                        ("base", base), ("every", every)):
        check_count(name, value)
    if not mults or any(not isinstance(m, int) or m < 1 for m in mults):  # found by the fuzz: tracebacks
        raise UsageError(f"mults must be positive whole numbers, e.g. 1,2,4; got {mults!r}")
    if base % 2 or base * mults[-1] % 4:
        raise UsageError(f"base must be even, and base x the last of mults a multiple of 4 (4 attention heads); "
                         f"got base={base}, mults={tuple(mults)}")
    from diffusio._resources import check_memory

    check_memory(40.0 * batch_size * frames * size * size * base * max(mults), f"batch_size={batch_size}",
                 "lower --batch-size (or --frames, --size, --base)")
    if not 0 <= image_fraction < 1 or not 0 <= cond_dropout <= 1:
        raise UsageError("image_fraction must be in [0, 1) and cond_dropout in [0, 1]")
    use_bf16(bf16)


def _adopt(config: dict, parent: VideoGenerator, init: str | Path, frame_cond: bool, whiten_cond: bool) -> None:
    """Make ``config`` continue ``parent``: its network (plus the frame condition when asked for),
    preconditioning and sampling defaults."""
    mine, theirs = config["clip"], parent.config["clip"]
    if (mine["size"], mine["channels"]) != (theirs["size"], theirs["channels"]):
        raise UsageError(f"init {init} makes {theirs['size']}x{theirs['size']} clips with {theirs['channels']} "
                         f"channel(s), this run's data have {mine['size']}x{mine['size']} with {mine['channels']}; "
                         "set size to match or train without init")
    for key in ("net", "preconditioning", "sampling"):
        config[key] = dict(parent.config[key])
    for key in ("redraws", "nudges", "motion_check"):  # the parent's checks and guides stay in the parent's folder
        config["sampling"].pop(key, None)
    if frame_cond:
        config["net"]["frame_cond"] = True
    if whiten_cond:
        config["net"]["whiten_cond"] = True
    trained = parent.config.get("trained", {})
    config["init"] = {"model": str(init), "steps": trained.get("steps"), "wall_seconds": trained.get("wall_seconds")}


def _check_same_net(out: Path, net: dict) -> None:
    saved = read_run_meta(out).get("model", {}).get("net", {})
    changed = sorted(k for k in set(saved) | set(net) if saved.get(k, False) != net.get(k, False))
    if changed:
        raise UsageError(f"resume: {out} was trained with another network ({', '.join(changed)}); resume it with "
                         "the same options (--base, --mults, --frame-cond)")


def _load_parent(net: torch.nn.Module, parent: VideoGenerator) -> None:
    """The parent's weights; a frame condition or whitened path it lacks stays as built (at zero: no change)."""
    missing, unexpected = net.load_state_dict(parent.denoiser.net.state_dict(), strict=False)
    if unexpected or any(not key.startswith(("frame_embed.", "whiten_embed.")) for key in missing):
        raise UsageError(f"the parent's weights do not fit its own network (missing {missing[:3]}, unexpected "
                         f"{unexpected[:3]}); the parent model is damaged or from another version")


def _config(source, settings: dict, base: int, mults: tuple[int, ...], time_attn_levels, frame_cond: bool) -> dict:
    """The run's config.json: clip shape, network, preconditioning, conditioning, data, settings."""
    levels = len(mults)
    time_attn_levels = (levels - 1,) if time_attn_levels is None else tuple(time_attn_levels)
    frames, size = settings["frames"], settings["size"]
    channels = 1 if isinstance(source, MovingData) else int(source.array.shape[-1])
    return {"kind": KIND, "clip": {"frames": frames, "size": size, "channels": channels},
            "net": dict(channels=channels, base=base, mults=list(mults), blocks=1, attn_levels=[levels - 1],
                        time_attn_levels=list(time_attn_levels), cond_dim=EMBED_DIM, dropout=0.0,
                        frame_cond=bool(frame_cond)),
            "preconditioning": {"kind": "edm", "sigma_data": 0.5},
            "conditioning": {"kind": "text", "encoder": ENCODER_NAME, "dim": EMBED_DIM},
            "data": source.summary(),
            "sampling": {"sampler": "dpmpp-2m", "steps": 20, "guidance": 3.0},
            "settings": settings}


def _data(data: str, captions, frames: int, size: int, object_size: int, objects: int):
    if data in BUILTIN:
        return MovingData(BUILTIN[data], frames, size, object_size, objects)
    if not Path(data).is_dir():
        raise UsageError(f"data must be {', '.join(BUILTIN)} or a folder of GIF/MP4 clips; {data!r} is neither")
    from diffusio.video.folder import load_clip_folder

    array, texts, _ = load_clip_folder(data, frames=frames, size=(size, size), channels=1, captions=captions)
    return FolderData(array, texts, Path(data).name)


def _whitening_captions(source) -> list[str]:
    """The captions the whitening is fitted on: every motion caption of the built-in clips, or the
    distinct captions of a folder's."""
    if isinstance(source, MovingData):
        return all_captions(source.source)[0]
    texts = sorted(set(source.captions or []))
    if len(texts) < 2:
        raise UsageError("whiten_cond (--whiten-cond) fits the whitening on the training captions, and this folder "
                         f"has {len(texts)} distinct caption(s); add a captions CSV or train without it")
    return texts


def _embed(texts: list[str] | None, cache: dict[str, np.ndarray], n: int) -> torch.Tensor:
    """Sentence embeddings of a batch's captions (zero rows: no caption), memoised per run."""
    if texts is None:
        return torch.zeros(n, EMBED_DIM)
    todo = sorted({t for t in texts if t not in cache})
    if todo:
        cache.update(zip(todo, encode(todo)))
    return torch.from_numpy(np.stack([cache[t] for t in texts]))


def _save(out: Path, ema, config: dict, run: Progress) -> None:
    config["trained"] = {"steps": run.step, "wall_seconds": round(run.wall, 1)}
    VideoGenerator(ema, config, out).save(out)
