"""MoleculeDiffusion: masked (absorbing-state) discrete diffusion over SELFIES tokens.

Forward process: every token is replaced by [mask] independently with probability t (MDLM's linear
schedule, Sahoo et al. 2024; Austin et al. 2021's absorbing state).  The network predicts the clean
token at each masked position; the loss is the cross-entropy there weighted by 1/t, MDLM's
continuous-time bound.  Sampling starts from all-[mask] and, stepping t down to 0, reveals a
(t - s) / t share of the masked positions, drawing each token from the prediction; a revealed token
is never changed again, except by the remasking sampler's correction rounds.  Which positions: those
the network is surest of (``sampler="confident"``) or any (``"random"``, MDLM's own); ``"remask"``
writes surest first in half the steps, then redraws the least sure tokens; :mod:`.sampling`.
SELFIES guarantees every finished sequence is a valid molecule.
Conditions on QED, logP or weight use classifier-free guidance over binned properties.

>>> model = MoleculeDiffusion(steps=3, width=32, depth=1, heads=2, batch_size=8)
>>> model = model.fit(["CCO", "CCN", "c1ccccc1", "CC(=O)O"] * 4)
>>> table = model.sample(4, seed=0)
>>> list(table.columns)
['smiles', 'qed', 'logp', 'weight']
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from diffusio._precision import bf16_autocast, use_bf16
from diffusio.errors import UsageError
from diffusio.generative.checkpoint import files as ckpt
from diffusio.generative.training.fitting import (Progress, check_same_init, load_fit_state, optimiser_step,
                                                  save_fit_state)
from diffusio.generative.training.loop import run_loop
from diffusio.generative.training.schedule import check_cooldown, learning_rate, report_unfinished_cooldown
from diffusio.molecules.net import TokenTransformer
from diffusio.molecules.properties import NAMES, Bins, compute_properties, parse_condition
from diffusio.molecules.sampling import SAMPLERS
from diffusio.molecules.tokens import Vocabulary, to_selfies

KIND = "molecules"
MIN_T = 1e-3        # the loss weight 1/t is bounded by drawing t from [MIN_T, 1]
WARMUP = 200        # steps of linear learning-rate warm-up
PREPARED = "train_data.npz"


@dataclass
class MoleculeDiffusion:
    """A molecule generator, scikit-learn style: ``fit(smiles)``, ``sample(n)``.

    ``length``: the longest SELFIES (tokens) the model writes (default: the longest in the training
    set, at most 72; longer training molecules are left out and counted); ``sample_steps``: reveal
    steps (network passes); ``sampler``: ``confident``, ``random`` or ``remask`` (:mod:`.sampling`);
    ``cooldown``: the last fraction of ``steps`` over which the learning rate falls linearly to zero
    (0: constant after warm-up); ``guidance``: classifier-free guidance scale for conditions (1: plain conditional);
    ``bf16``: run the network in bfloat16 when sampling (``on``; ``auto``: where the CPU computes
    bfloat16 natively, see :mod:`diffusio._precision`): 2.8x faster on 2 cores there; the same seed on
    the same machine gives the same molecules, but not the float32 ones.
    """

    steps: int = 20000
    minutes: float | None = None
    width: int = 192
    depth: int = 4
    heads: int = 4
    batch_size: int = 256
    lr: float = 1e-3
    cooldown: float = 0.0
    ema_decay: float = 0.999
    length: int | None = None
    bins: int = 5
    cond_dropout: float = 0.3
    sample_steps: int = 16
    sampler: str = "remask"
    guidance: float = 2.0
    seed: int = 0
    quiet: bool = True
    every: int = 250
    bf16: str = "off"

    def __post_init__(self):
        for name in ("steps", "width", "depth", "heads", "batch_size", "bins", "sample_steps", "every"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise UsageError(f"{name} must be a positive whole number, got {value!r}")
        if self.width % self.heads:
            raise UsageError(f"width ({self.width}) must be a multiple of heads ({self.heads})")
        from diffusio._resources import check_memory  # found by the fuzz: width=1e9 was an allocator traceback

        # two networks' weights (12 width^2 a layer), gradients and Adam's two moments, and the activations
        # of a batch of strings of up to 128 tokens
        check_memory(4.0 * 12 * self.depth * self.width ** 2 * 5 + 4.0 * 20 * self.batch_size * 128 * self.width
                     * self.depth, f"width={self.width}, depth={self.depth}", "lower width, depth or batch_size")
        if self.minutes is not None and not (isinstance(self.minutes, (int, float)) and self.minutes > 0):
            raise UsageError(f"minutes must be a positive number of minutes, got {self.minutes!r}")
        if not (isinstance(self.lr, (int, float)) and 0 < self.lr < 1):
            raise UsageError(f"lr must be in (0, 1), got {self.lr!r}")
        check_cooldown(self.cooldown, "cooldown", "steps")
        if not 0 <= self.cond_dropout <= 1:
            raise UsageError(f"cond_dropout must be in [0, 1], got {self.cond_dropout!r}")
        if not (isinstance(self.guidance, (int, float)) and 0 <= self.guidance <= 20):
            raise UsageError(f"guidance must be in [0, 20], got {self.guidance!r}")
        use_bf16(self.bf16)
        check_sampler(self.sampler)
        self.vocab: Vocabulary | None = None
        self.property_bins: Bins | None = None
        self._init: dict | None = None  # the model this one was continued from (fit's init)
        self.run = Progress()
        self.dropped = 0

    # ------------------------------------------------------------------ fit
    def fit(self, smiles: list[str], *, out: str | Path | None = None, resume: bool = False,
            init: str | Path | None = None) -> "MoleculeDiffusion":
        """Learn from SMILES strings.  ``out``: a folder receiving the model and a resumable state
        every ``every`` steps; ``resume=True`` continues the run there.  ``init``: a trained molecule
        model (a shipped name or a folder) to continue from: its weights, tokens, property bins and
        architecture (``width``, ``depth``, ``heads``, ``length``, ``bins`` are taken from it);
        molecules with a token it does not know are left out and counted.  A run started from a
        model resumes with the same ``init``."""
        if isinstance(smiles, str) or len(smiles) < 2:
            raise UsageError("fit needs a list of at least 2 SMILES strings")
        if resume and out is None:
            raise UsageError("resume needs out: the folder of the run to continue")
        self._init = None  # set by _adopt: a fit from scratch keeps no earlier model's record
        parent = self._adopt(init) if init is not None else None
        tokens, values = self._prepare(smiles, None if out is None else Path(out) / PREPARED, resume,
                                       vocab=None if parent is None else parent.vocab)
        self.property_bins = Bins.fit(values, self.bins) if parent is None else parent.property_bins
        x = torch.from_numpy(tokens)
        cond = torch.from_numpy(self.property_bins.assign(values))
        self._build()
        if parent is not None:  # the parent's averaged weights start both the trained and the EMA network
            self.net.load_state_dict(parent.ema.state_dict())
            self.ema.load_state_dict(parent.ema.state_dict())
        self.run = Progress()
        opt = torch.optim.AdamW(self.net.parameters(), lr=self.lr, weight_decay=0.0)
        gen = torch.Generator().manual_seed(self.seed)
        if resume:
            self._resume(Path(out), opt, gen)

        def train_step() -> float:
            for group in opt.param_groups:
                group["lr"] = learning_rate(self.run.step, self.lr, warmup=WARMUP, total=self.steps,
                                            cooldown=self.cooldown)
            rows = torch.randint(0, len(x), (self.batch_size,), generator=gen)
            loss = masked_diffusion_loss(self.net, x[rows], cond[rows], gen, self.cond_dropout, self.vocab.mask)
            return optimiser_step(loss, opt, self.net, self.ema, self.run, self.ema_decay, clip=1.0)

        def checkpoint() -> None:
            if out is not None:
                self._save_state(Path(out), opt, gen)

        if out is not None:
            Path(out).mkdir(parents=True, exist_ok=True)
        self.net.train()
        run_loop(self.run, train_step, checkpoint, total=self.steps, every=self.every,
                 minutes=self.minutes or 0, desc="fit", quiet=self.quiet)
        report_unfinished_cooldown(self.run.step, self.steps, self.cooldown, self.lr, WARMUP)
        self.net.eval()
        if out is not None:
            self._save_state(Path(out), opt, gen)
        return self

    def _prepare(self, smiles: list[str], cache: Path | None, resume: bool,
                 vocab: Vocabulary | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Tokens and properties of the training molecules (minutes for 100,000: QED is slow), kept in
        ``cache`` (a plain .npz) so a resumed run does not redo them.  ``vocab``: given (a parent
        model's) instead of built from ``smiles``."""
        if resume and cache is not None and cache.is_file():
            with np.load(cache, allow_pickle=False) as data:
                cached = [str(t) for t in data["vocab"]]
                if (int(data["count"]) == len(smiles) and str(data["first"]) == smiles[0]
                        and (vocab is None or cached == vocab.tokens)):
                    self.vocab = Vocabulary(cached)
                    self.length, self.dropped = int(data["length"]), int(data["dropped"])
                    return data["tokens"], data["values"]
        self.vocab = Vocabulary.build(smiles) if vocab is None else vocab
        if self.length is None:
            self.length = min(72, max((n for n in map(_selfies_len, smiles) if n), default=1))
        tokens, kept = self.vocab.encode_kept(smiles, self.length)
        self.dropped = len(smiles) - len(kept)
        if len(tokens) < 2:
            fix = "train without init" if vocab is not None else "raise length"
            raise UsageError(f"only {len(tokens)} molecules fit in {self.length} SELFIES tokens of the model's "
                             f"vocabulary; {fix}")
        values = compute_properties([smiles[i] for i in kept])
        if cache is not None:
            from diffusio._io import atomic_path

            cache.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(cache, suffix=".npz") as tmp:
                np.savez(tmp, tokens=tokens, values=values, vocab=np.array(self.vocab.tokens), count=len(smiles),
                         first=smiles[0], length=self.length, dropped=self.dropped)
        return tokens, values

    def _adopt(self, init: str | Path) -> "MoleculeDiffusion":
        """The model to start from, its architecture copied onto this one."""
        parent = MoleculeDiffusion.load(init)
        for name in ("width", "depth", "heads", "length", "bins"):
            setattr(self, name, getattr(parent, name))
        self._init = {"model": str(init), "steps": parent.run.step, "wall_seconds": round(parent.run.wall, 1)}
        return parent

    def _build(self) -> None:
        args = (len(self.vocab), self.length, self.width, self.depth, self.heads, len(NAMES), self.bins)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.net = TokenTransformer(*args)
        self.ema = TokenTransformer(*args)
        self.ema.load_state_dict(self.net.state_dict())
        self.ema.requires_grad_(False).eval()

    # --------------------------------------------------------------- sample
    @torch.no_grad()
    def sample(self, n: int, seed: int = 0, condition: str | None = None, guidance: float | None = None,
               steps: int | None = None, batch_size: int = 500, progress: bool = False,
               bf16: str | None = None, sampler: str | None = None) -> pd.DataFrame:
        """``n`` molecules as a DataFrame: canonical ``smiles`` and their ``qed``, ``logp``, ``weight``.

        ``condition``: e.g. ``"qed>0.8"``, ``"logp<3"``, ``"250<weight<350"``; ``guidance``: scale
        (default the model's); ``steps``: reveal steps (default the model's ``sample_steps``);
        ``progress``: a progress bar over batches of ``batch_size``; ``bf16``: ``auto``, ``on`` or
        ``off``; ``sampler``: the order in which positions are revealed, ``confident``, ``random`` or
        ``remask`` (:mod:`.sampling`; default: the model's).
        """
        if self.vocab is None:
            raise UsageError("the model is not fitted; call fit(smiles) or MoleculeDiffusion.load(path) first")
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
            raise UsageError(f"n must be a positive whole number of molecules, got {n!r}")
        from diffusio._resources import check_memory  # found by the fuzz: n=2^63 was a TypeError traceback

        check_memory(1024.0 * n, f"n={n:,} molecules", "generate fewer at a time")
        steps = self.sample_steps if steps is None else steps
        if not isinstance(steps, (int, np.integer)) or steps < 1:
            raise UsageError(f"steps must be a positive whole number, got {steps!r}")
        scale = self.guidance if guidance is None else guidance
        reveal = SAMPLERS[check_sampler(self.sampler if sampler is None else sampler)]
        fast = use_bf16(self.bf16 if bf16 is None else bf16)
        gen = torch.Generator().manual_seed(int(seed))
        cond = self._condition_bins(condition, n, gen)
        smiles = []
        for start in tqdm(range(0, n, batch_size), desc="generate", unit="batch", disable=not progress or n <= batch_size):
            with bf16_autocast(fast):
                ids = reveal(self.ema, min(batch_size, n - start), self.length, self.vocab.mask, steps, gen,
                             cond=cond[start:start + batch_size], guidance=scale if condition else 1.0)
            smiles += self.vocab.decode(ids.numpy())
        props = compute_properties(smiles)
        return pd.DataFrame({"smiles": smiles, **{name: props[:, i] for i, name in enumerate(NAMES)}})

    def _condition_bins(self, condition: str | None, n: int, gen: torch.Generator) -> torch.Tensor:
        """Bin indices (n, properties); all 0 ("no condition", as trained by dropout) without one."""
        cond = torch.zeros((n, len(NAMES)), dtype=torch.long)
        if condition is None:
            return cond
        name, lo, hi = parse_condition(condition)
        mass = self.property_bins.check_range(name, lo, hi)
        p = NAMES.index(name)
        cond[:, p] = torch.multinomial(torch.tensor(mass / mass.sum()), n, replacement=True, generator=gen) + 1
        return cond

    # ---------------------------------------------------------- save / load
    def _config(self) -> dict:
        settings = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "quiet"}
        return {"kind": KIND, "settings": settings, "tokens": self.vocab.tokens, "properties": list(NAMES),
                "property_quantiles": self.property_bins.quantiles.tolist(), "dropped_too_long": self.dropped,
                "trained": {"steps": self.run.step, "wall_seconds": round(self.run.wall, 1)},
                **({"init": self._init} if self._init else {})}

    def save(self, path: str | Path) -> Path:
        if self.vocab is None:
            raise UsageError("the model is not fitted; there is nothing to save")
        ckpt.save_model(path, self._config(), {f"net.{k}": v for k, v in self.ema.state_dict().items()})
        return Path(path)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "MoleculeDiffusion":
        """A fitted model from a folder written by :meth:`save` or ``fit(out=...)``, or a model shipped
        with diffusio by name (default: ``moses-small``).

        >>> len(MoleculeDiffusion.load().sample(2, seed=0))
        2
        """
        from diffusio.molecules.files import resolve_model

        path = resolve_model(path)
        config = ckpt.load_config(path)
        if config.get("kind") != KIND:
            raise UsageError(f"{path} holds a {config.get('kind', 'image')} model, not a molecule model; "
                             "point at a folder written by `diffusio molecules train`")
        tensors = ckpt.load_tensors(Path(path) / "model.safetensors")
        try:
            model = cls(**{**config["settings"], "quiet": True})
            model.vocab = Vocabulary(list(config["tokens"]))
            model.property_bins = Bins(np.array(config["property_quantiles"]), model.bins)
            model.dropped = config.get("dropped_too_long", 0)
            model.run = Progress(config["trained"]["steps"], [], config["trained"]["wall_seconds"])
            model._init = config.get("init")
        except (KeyError, TypeError) as err:
            raise UsageError(f"{path}/config.json is incomplete ({err!r}); retrain the model") from None
        model._build()
        ckpt.load_state_into(model.ema, tensors, "net.", Path(path) / "model.safetensors")
        return model

    def _save_state(self, out: Path, opt, gen) -> None:
        self.save(out)
        save_fit_state(out, self.run, self.net, self.ema, opt, gen, self._config())

    def _resume(self, out: Path, opt, gen) -> None:
        self._init = check_same_init(out, (self._init or {}).get("model"))
        self.run = load_fit_state(out, self.net, self.ema, opt, gen, self._config(),
                                  lambda saved: saved.get("tokens") == self.vocab.tokens)


def _selfies_len(smiles: str) -> int | None:
    toks = to_selfies(smiles)
    return None if toks is None else len(toks)


def masked_diffusion_loss(net, x0: torch.Tensor, cond: torch.Tensor, gen: torch.Generator, cond_dropout: float,
                          mask_id: int) -> torch.Tensor:
    """MDLM's loss: mask with probability t, cross-entropy at masked positions weighted by 1/t.
    t is drawn low-discrepancy (one uniform offset, evenly spaced across the batch) to cut variance."""
    b, length = x0.shape
    t = ((torch.rand(1, generator=gen) + torch.arange(b) / b) % 1.0) * (1 - MIN_T) + MIN_T
    masked = torch.rand((b, length), generator=gen) < t[:, None]
    keep = torch.rand(cond.shape, generator=gen) >= cond_dropout
    logits = net(torch.where(masked, mask_id, x0), cond * keep)
    logits[..., mask_id] = -math.inf
    nll = F.cross_entropy(logits[masked], x0[masked], reduction="none")
    weights = (1 / t)[:, None].expand(b, length)[masked]
    return (nll * weights).sum() / (b * length)


def check_sampler(name: str) -> str:
    if name not in SAMPLERS:
        raise UsageError(f"sampler must be one of {', '.join(SAMPLERS)}; got {name!r}")
    return name
