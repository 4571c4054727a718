"""Training: the denoising loss, EMA, checkpoints every N steps, resume, determinism.

>>> cfg = TrainConfig(data="digits", out="/tmp/diffusio-doc-run", steps=2, batch_size=8, base=8,
...                   mults=(1, 2), every=0, cond="class", quiet=True)
>>> run = train(cfg)                                   # doctest: +SKIP
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from diffusio._precision import bf16_autocast, use_bf16
from diffusio._resources import check_memory
from diffusio.errors import UsageError
from diffusio.generative.checkpoint import files as ckpt
from diffusio.generative.training import distributed
from diffusio.generative.training.loop import run_loop
from diffusio.generative.training.posthoc_ema import PowerEMA
from diffusio.generative.training.schedule import check_cooldown, learning_rate, report_unfinished_cooldown
from diffusio.generative.training.losses import (LOSSES, ema_decay_at, ema_update, optimizer_tensors,
                                                 restore_optimizer)
from diffusio.generative.conditioning.attributes import Attributes, check_names, pad_condition_input
from diffusio.generative.conditioning.captions import class_captions
from diffusio.generative.data.datasets import ImageDataset, load_dataset, to_uint8
from diffusio.generative.core.denoiser import Denoiser
from diffusio.generative.checkpoint.models import build_denoiser_from_config, load_model


@dataclass
class TrainConfig:
    data: str
    out: str
    steps: int = 10000
    batch_size: int = 64
    lr: float = 1e-3
    warmup: int = 200
    cooldown: float = 0.0         # the last fraction of `steps` over which the lr falls linearly to zero
    ema_decay: float = 0.999
    posthoc_ema: bool = False     # also keep EDM2's two power-function EMAs, saved at every checkpoint
    seed: int = 0
    cond: str = "auto"            # auto | text | class | none
    cond_dropout: float = 0.1     # drop to the null condition, for classifier-free guidance
    precond: str = "edm"          # edm | vp
    base: int = 32
    mults: tuple[int, ...] = (1, 2, 2)
    blocks: int = 1
    attn_levels: tuple[int, ...] = (2,)
    dropout: float = 0.0
    attributes: tuple[str, ...] = ()  # image features to condition on (see attributes.py)
    attr_dropout: float = 0.3     # each attribute is left out of a training condition this often
    init: str = ""                # fine-tune from this model (shipped name or run directory)
    attributes_only: bool = False  # with init and attributes: the parent frozen, only a wish adapter learns
    every: int = 500              # checkpoint + sample grid + loss plot every N steps (0: only at the end)
    minutes: float = 0.0          # stop cleanly after this wall time (0: no limit)
    threads: int = 0              # torch threads (0: leave torch's default)
    device: str = "cpu"           # cpu | cuda | auto (random draws stay on the CPU: same batches anywhere)
    bf16: str = "auto"            # auto | on | off: bfloat16 autocast (auto: where the CPU has AMX or AVX-512 BF16)
    quiet: bool = False
    extra: dict = field(default_factory=dict)

    def validate(self) -> None:
        if self.steps < 1:
            raise UsageError(f"--steps must be >= 1, got {self.steps}")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be >= 1, got {self.batch_size}")
        if not 0 < self.lr < 1:  # also refuses inf and nan
            raise UsageError(f"--lr must be in (0, 1), got {self.lr}")
        check_cooldown(self.cooldown)
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 0:
            raise UsageError(f"--threads must be >= 0 (0: torch's default), got {self.threads}")
        if self.base < 1 or self.blocks < 1 or not self.mults or min(self.mults) < 1:
            raise UsageError(f"--base, --blocks and every --mults entry must be >= 1, got base {self.base}, "
                             f"blocks {self.blocks}, mults {','.join(map(str, self.mults)) or '(none)'}")
        if not 0 <= self.ema_decay < 1:
            raise UsageError(f"--ema-decay must be in [0, 1), got {self.ema_decay}")
        if not 0 <= self.cond_dropout < 1:
            raise UsageError(f"--cond-dropout must be in [0, 1), got {self.cond_dropout}")
        if self.cond not in ("auto", "text", "class", "none"):
            raise UsageError(f"--cond must be auto, text, class or none, got {self.cond!r}")
        if self.precond not in ("edm", "vp"):
            raise UsageError(f"--precond must be edm or vp, got {self.precond!r}")
        if not 0 <= self.attr_dropout < 1:
            raise UsageError(f"--attr-dropout must be in [0, 1), got {self.attr_dropout}")
        if self.attributes:
            check_names(self.attributes)
        if self.attributes_only and not (self.init and self.attributes):
            raise UsageError("--attributes-only teaches a parent model new attribute inputs; give it --init MODEL "
                             "and --attributes NAMES")
        distributed.resolve_device(self.device)
        use_bf16(self.bf16, "--bf16")


# ---------------------------------------------------------------- conditioning
class Conditioning:
    """Turns dataset labels/captions into one condition vector per image.

    text: a bank of sentence embeddings (several phrasings per class, or one per
    captioned image); each batch draws one phrasing per image.  class: one-hot.
    """

    def __init__(self, kind: str, ds: ImageDataset, attributes: tuple[str, ...] = (), attr_dropout: float = 0.3):
        self.kind, self.attr_dropout = kind, attr_dropout
        self.class_names = ds.class_names
        self.bank = self.starts = self.counts = None
        self.image_caption = None
        self.class_embeddings = None
        if kind == "text":
            from diffusio.generative.conditioning.text import EMBED_DIM, ENCODER_NAME, encode

            self.dim, self.encoder = EMBED_DIM, ENCODER_NAME
            if ds.captions is not None:
                unique = sorted(set(ds.captions))
                self.bank = torch.from_numpy(encode(unique))
                index = {c: i for i, c in enumerate(unique)}
                self.image_caption = torch.tensor([index[c] for c in ds.captions])
            else:
                per_class = [class_captions(name, ds.synonyms) for name in ds.class_names]
                self.bank = torch.from_numpy(encode([c for caps in per_class for c in caps]))
                self.counts = torch.tensor([len(c) for c in per_class])
                self.starts = torch.cumsum(self.counts, 0) - self.counts
            if ds.labels is not None:
                self.class_embeddings = self._class_means(ds)
        elif kind == "class":
            self.dim = len(ds.class_names)
            self.class_embeddings = torch.eye(self.dim)
        else:
            self.dim = 0
        self.text_dim = self.dim
        self.attributes = self.ranks = None
        if attributes:
            if self.kind == "none" or ds.labels is None:
                raise UsageError("--attributes need a labelled dataset and a text or class condition "
                                 "(they are ranked within each class)")
            self.attributes = Attributes.fit(attributes, ds.images, ds.labels, len(ds.class_names))
            ranks = self.attributes.ranks(ds.images, ds.labels)
            self.ranks = torch.tensor(np.stack([ranks[k] for k in attributes], 1), dtype=torch.float32)
            self.dim += self.attributes.dim
            # stored class vectors carry "no attribute wish" zeros, so every consumer of them
            # (editing, export, audits) builds full-width conditions without knowing of attributes
            self.class_embeddings = torch.cat(
                [self.class_embeddings, self.class_embeddings.new_zeros(len(self.class_embeddings),
                                                                         self.attributes.dim)], 1)

    def _class_means(self, ds: ImageDataset) -> torch.Tensor:
        rows = []
        for c in range(len(ds.class_names)):
            if self.starts is not None:
                vecs = self.bank[self.starts[c]: self.starts[c] + self.counts[c]]
            else:
                vecs = self.bank[self.image_caption[torch.from_numpy(ds.labels == c)]]
            mean = vecs.mean(0)
            rows.append(mean / mean.norm().clamp_min(1e-8))
        return torch.stack(rows)

    def batch(self, labels: torch.Tensor, idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor | None:
        if self.kind == "none":
            return None
        if self.kind == "class":
            base = torch.eye(self.text_dim)[labels]
        elif self.image_caption is not None:
            base = self.bank[self.image_caption[idx]]
        else:
            pick = (torch.rand(len(labels), generator=gen) * self.counts[labels]).long()
            base = self.bank[self.starts[labels] + pick]
        if self.attributes is None:
            return base
        # each attribute, and the prompt too, is left out with probability attr_dropout, so
        # every mix of wishes (attributes alone, no prompt) is learned as well
        keep = torch.rand(len(idx), len(self.attributes.names) + 1, generator=gen) >= self.attr_dropout
        base = base * keep[:, :1].to(base.dtype)
        return torch.cat([base, self.attributes.training_block(self.ranks[idx], keep[:, 1:])], 1)

    def config(self) -> dict:
        out = {"kind": self.kind, "dim": self.dim, "class_names": self.class_names}
        if self.kind == "text":
            out["encoder"] = self.encoder
        if self.attributes is not None:
            out["text_dim"] = self.text_dim
            out["attributes"] = self.attributes.config()
        return out


def _is_adapter(name: str) -> bool:
    """A parameter of the wish adapter (``wish_embed``, each block's ``wish_film``)."""
    return name.startswith("wish_embed.") or ".wish_film." in name


def resolve_cond_kind(requested: str, ds: ImageDataset) -> str:
    if requested == "auto":
        return "text" if (ds.captions is not None or ds.class_names) else "none"
    if requested == "class" and ds.labels is None:
        raise UsageError(f"--cond class needs labels, and {ds.name} has none; use sub-folders per class or --cond none")
    if requested == "text" and ds.captions is None and not ds.class_names:
        raise UsageError(f"--cond text needs captions or class names, and {ds.name} has neither; add captions.csv")
    return requested


# ---------------------------------------------------------------- trainer
def model_config(cfg: TrainConfig, ds: ImageDataset, cond: Conditioning) -> dict:
    c, h, w = ds.shape
    net = {"kind": "unet", "channels": c, "base": cfg.base, "mults": list(cfg.mults), "blocks": cfg.blocks,
           "attn_levels": list(cfg.attn_levels), "cond_dim": cond.dim, "dropout": cfg.dropout}
    pre = {"kind": "edm", "sigma_data": 0.5} if cfg.precond == "edm" else {"kind": "vp"}
    return {"net": net, "preconditioning": pre, "conditioning": cond.config(),
            "image": {"channels": c, "height": h, "width": w}, "data": ds.summary(),
            "sampling": {"sampler": "dpmpp-2m", "steps": 20, "schedule": "karras",
                         "guidance": 3.0 if cond.kind != "none" else 1.0}}


class Trainer:
    def __init__(self, cfg: TrainConfig, resume: bool = False):
        cfg.validate()
        self.cfg, self.out = cfg, Path(cfg.out)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        ds = load_dataset(cfg.data)  # before creating --out: a bad --data must leave nothing behind
        self.cond = Conditioning(resolve_cond_kind(cfg.cond, ds), ds, tuple(cfg.attributes), cfg.attr_dropout)
        self.config = model_config(cfg, ds, self.cond)
        net = self.config["net"]  # activations kept for the backward pass: about 40 bytes per pixel and width
        check_memory(40.0 * cfg.batch_size * ds.images[0].size * net["base"] * max(net["mults"]),
                     f"batch_size={cfg.batch_size}", "lower --batch-size (or --base)")
        parent = self._parent() if cfg.init else None  # also before --out: a bad --init leaves nothing
        self.device = distributed.resolve_device(cfg.device)
        # matrix products in bfloat16, weights, optimiser and EMA in float32 (autocast); a GPU run is unaffected
        self.bf16 = use_bf16(cfg.bf16, "--bf16") and self.device.type == "cpu"
        self.rank, self.world = distributed.setup(cfg.batch_size, self.device)
        self._prepare_out(resume)
        self.images = torch.from_numpy(ds.images)
        self.labels = torch.from_numpy(ds.labels) if ds.labels is not None else torch.zeros(len(ds), dtype=torch.long)

        torch.manual_seed(cfg.seed)  # net init and dropout
        self.denoiser: Denoiser = build_denoiser_from_config(self.config)
        if parent is not None:
            self._start_from(parent)
        if cfg.attributes_only:
            self._freeze_parent()
        self.denoiser.to(self.device)
        self.ema: Denoiser = build_denoiser_from_config(self.config).to(self.device)
        self.ema.load_state_dict(self.denoiser.state_dict())
        self.ema.requires_grad_(False).eval()
        self.phema = PowerEMA(self.denoiser.net) if cfg.posthoc_ema else None
        self.opt = torch.optim.Adam(self.denoiser.parameters(), lr=cfg.lr)
        self.gen = torch.Generator().manual_seed(cfg.seed)  # the same on every rank: same global batches
        self.loss_fn = LOSSES[cfg.precond]
        self.part = distributed.shard(self.world, self.rank, cfg.batch_size)
        self.trained = self.denoiser
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            gpu = [self.device.index] if self.device.type == "cuda" else None
            self.trained = DistributedDataParallel(self.denoiser, device_ids=gpu)
        self.step, self.losses, self.wall = 0, [], 0.0
        if resume:
            self._load_state()

    def _parent(self):
        """The model named by --init, checked against this run; the network follows the parent's."""
        parent = load_model(self.cfg.init)
        pc = parent.config.get("conditioning", {})
        if pc.get("kind") != self.cond.kind or pc.get("dim") != self.cond.text_dim or pc.get("attributes"):
            base = parent.config.get("training", {}).get("init") if pc.get("attributes") else None
            raise UsageError(f"--init {self.cfg.init}: its condition ({pc.get('kind')}, {pc.get('dim')} dims"
                             f"{', with attributes' if pc.get('attributes') else ''}) does not match this run's "
                             f"({self.cond.kind}, {self.cond.text_dim} dims); " + (f"start from the model it was trained "
                             f"from, --init {base}" if base else "fine-tune a model trained on the same data and condition"))
        img = self.config["image"]
        data_shape = (img["channels"], img["height"], img["width"])
        if parent.image_shape != data_shape:
            raise UsageError(f"--init {self.cfg.init} makes {parent.image_shape} images, the data are "
                             f"{data_shape}; use a model of this dataset")
        self.config["net"] = {**parent.config["net"], "cond_dim": self.cond.dim}
        if self.cfg.attributes_only:  # the wish block: 2 entries per attribute (attributes.py)
            self.config["net"]["wish_dims"] = self.cond.dim - self.cond.text_dim
        self.config["preconditioning"] = parent.config["preconditioning"]
        self.config["sampling"] = dict(parent.config.get("sampling", self.config["sampling"]))
        for key in ("classifier_guidance", "redraws", "redraw_below", "nudges"):  # the parent's class guide stays in its folder
            self.config["sampling"].pop(key, None)
        # the parent's autoguidance stays: with attributes, its guide reads the prompt part (load_guide)
        return parent

    def _start_from(self, parent) -> None:
        state = parent.denoiser.net.state_dict()
        extra = self.cond.dim - self.cond.text_dim
        if extra:
            state = pad_condition_input(state, "cond_embed.0.weight", extra)
        # a wish adapter (--attributes-only) is new: it starts at zero, the parent's weights are all there
        missing, unexpected = self.denoiser.net.load_state_dict(state, strict=False)
        if unexpected or any(not _is_adapter(k) for k in missing):
            raise UsageError(f"--init {self.cfg.init}: its network does not fit this run's "
                             f"({(unexpected or missing)[0]}); fine-tune a model of the same kind")

    def _freeze_parent(self) -> None:
        """--attributes-only: the parent's weights stay as they were (its condition's attribute
        columns at zero); only the wish adapter learns, which gives every residual block a scale and
        shift of its own from the wishes and the noise level (nets/unet.py).  On rows without wishes
        the adapter's output is exactly zero, so the model then computes what the parent does (as
        ControlNet keeps its base)."""
        net = self.denoiser.net
        net.requires_grad_(False)
        for name, param in net.named_parameters():
            param.requires_grad_(_is_adapter(name))

    def _prepare_out(self, resume: bool) -> None:
        state = self.out / "train_state.json"
        if resume and not state.exists():
            raise UsageError(f"--resume: no run to resume in {self.out}; drop --resume to start one")
        if not resume and state.exists():
            raise UsageError(f"{self.out} already holds a run; add --resume to continue it or choose another --out")
        if not resume and any((self.out / name).exists() for name in ("model.safetensors", "config.json")):
            raise UsageError(f"{self.out} already holds a model; training there would overwrite it: choose a new --out")
        if resume and (self.out / "distill.json").exists():
            raise UsageError(f"{self.out} holds a distillation, not a training run; resume it with diffusio distill")
        try:
            if self.rank == 0:
                self.out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UsageError(f"cannot create {self.out}: {err}; choose a writable --out") from err
        distributed.barrier(self.world)

    # -------------------------------------------------------- state
    def _train_tensors(self) -> dict[str, torch.Tensor]:
        t = {f"net.{k}": v for k, v in self.denoiser.net.state_dict().items()}
        t.update({f"ema.{k}": v for k, v in self.ema.net.state_dict().items()})
        t.update(optimizer_tensors(self.opt, self.denoiser))
        if self.phema is not None:
            t.update(self.phema.tensors())
        t["rng.data"] = self.gen.get_state()
        t["rng.torch"] = torch.get_rng_state()
        if self.device.type == "cuda":
            t["rng.cuda"] = torch.cuda.get_rng_state(self.device)  # dropout on the GPU draws from it
        return t

    def _load_state(self) -> None:
        meta, tensors = ckpt.load_run_state(self.out)
        if bool(meta.get("train", {}).get("attributes_only")) != self.cfg.attributes_only:  # before the network:
            raise UsageError(f"--resume: {self.out} was trained {'with' if not self.cfg.attributes_only else 'without'} "
                             "--attributes-only; resume it with the same switch")  # the adapter changes it
        if meta.get("model", {}).get("net") != self.config["net"] or meta.get("train", {}).get("data") != self.cfg.data:
            raise UsageError(f"--resume: {self.out} was trained with other settings; use the same --data and network")
        if bool(meta.get("train", {}).get("posthoc_ema")) != self.cfg.posthoc_ema:
            raise UsageError(f"--resume: {self.out} was trained {'with' if not self.cfg.posthoc_ema else 'without'} "
                             "--posthoc-ema; resume it with the same switch")
        try:
            ckpt.load_state_into(self.denoiser.net, tensors, "net.", self.out)
            ckpt.load_state_into(self.ema.net, tensors, "ema.", self.out)
            restore_optimizer(self.opt, self.denoiser, tensors)
            if self.phema is not None:
                self.phema.load(tensors)
            self.gen.set_state(tensors["rng.data"])
            torch.set_rng_state(tensors["rng.torch"])
            if self.device.type == "cuda" and "rng.cuda" in tensors:
                torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
            self.step, self.losses, self.wall = meta["step"], meta["losses"], meta["wall_seconds"]
        except (KeyError, RuntimeError) as err:
            raise UsageError(f"--resume: the state in {self.out} is incomplete ({err}); start a new run") from None

    def save(self) -> None:
        tensors = {f"net.{k}": v for k, v in self.ema.net.state_dict().items()}
        if self.cond.class_embeddings is not None:
            tensors["cond.class_embeddings"] = self.cond.class_embeddings
        config = dict(self.config, training={**asdict(self.cfg), "steps_done": self.step,
                                              "wall_seconds": round(self.wall, 1), "bf16_used": self.bf16})
        ckpt.save_model(self.out, config, tensors)
        if self.phema is not None:
            self.phema.snapshot(self.out, self.step)
        # the run state last: its train_state.json marks the checkpoint as complete for --resume
        ckpt.save_run_state(self.out, self.step, self._train_tensors(), {
            "wall_seconds": self.wall, "losses": self.losses, "train": asdict(self.cfg), "model": self.config})

    # -------------------------------------------------------- loop
    def lr_at(self, step: int) -> float:
        return learning_rate(step, self.cfg.lr, warmup=self.cfg.warmup, total=self.cfg.steps,
                             cooldown=self.cfg.cooldown)

    def train_step(self) -> float:
        idx = torch.randint(0, len(self.images), (self.cfg.batch_size,), generator=self.gen)
        x0, labels = self.images[idx], self.labels[idx]
        cond = self.cond.batch(labels, idx, self.gen)
        if cond is not None and self.cfg.cond_dropout > 0:
            keep = torch.rand(len(idx), generator=self.gen) >= self.cfg.cond_dropout
            cond = cond * keep[:, None].to(cond.dtype)
        x0, cond = x0.to(self.device), None if cond is None else cond.to(self.device)
        for group in self.opt.param_groups:
            group["lr"] = self.lr_at(self.step)
        with bf16_autocast(self.bf16):
            loss = self.loss_fn(self.trained, x0, cond, self.gen, part=self.part).float()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()  # DistributedDataParallel averages the gradients over the ranks here
        torch.nn.utils.clip_grad_norm_(self.denoiser.parameters(), 1.0)
        self.opt.step()
        self.step += 1
        ema_update(self.ema, self.denoiser, ema_decay_at(self.step, self.cfg.ema_decay))
        if self.phema is not None:
            self.phema.update(self.denoiser.net, self.step)
        return distributed.mean_across(loss.item(), self.world)

    def run(self) -> Path:
        self.denoiser.train()
        start = self.step
        run_loop(self, self.train_step, self.checkpoint, total=self.cfg.steps, every=self.cfg.every,
                 minutes=self.cfg.minutes, desc="train", quiet=self.cfg.quiet or self.rank > 0,
                 any_across=lambda flag: distributed.any_across(flag, self.world))
        if self.step > start:
            self.checkpoint()
        if self.rank == 0:
            report_unfinished_cooldown(self.step, self.cfg.steps, self.cfg.cooldown, self.cfg.lr, self.cfg.warmup)
        distributed.teardown(self.world)
        return self.out

    def checkpoint(self) -> None:
        """Rank 0 writes; the others wait, so no rank runs ahead of a checkpoint it may resume from."""
        if self.rank == 0:
            self.save()
            self.write_pictures()
        distributed.barrier(self.world)

    def write_pictures(self) -> None:
        from diffusio.generative.training.plots import save_loss_curve

        save_loss_curve(self.losses, self.out / "loss.png")
        self.write_samples(self.out / "samples.png")

    @torch.no_grad()
    def write_samples(self, path: Path) -> None:
        from diffusio.generative.data.images import save_images
        from diffusio.generative.core.sampling import sample

        n_classes = len(self.cond.class_embeddings) if self.cond.class_embeddings is not None else 0
        per = 8 if n_classes else 64
        cond = (self.cond.class_embeddings.repeat_interleave(per, 0) if n_classes else None)
        n = len(cond) if cond is not None else per
        self.ema.eval()
        # sampling draws its noise on the CPU, so the picture is drawn by a CPU copy of a GPU model
        ema = self.ema if self.device.type == "cpu" else copy.deepcopy(self.ema).cpu()
        x = sample(ema, n, self.config["image"], cond=cond, steps=20, sampler="dpmpp-2m",
                   guidance=2.0 if cond is not None else 1.0, seed=0)
        save_images(to_uint8(x.numpy()), path, ncol=per)


def train(cfg: TrainConfig, resume: bool = False) -> Path:
    """Train (or resume) a model; returns the run directory, which is loadable by ``Generator.load``."""
    return Trainer(cfg, resume).run()
