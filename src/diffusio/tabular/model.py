"""TableDiffusion: fit a diffusion model to a table, sample new rows like it.

The recipe (docs/tabular.md says why): numeric columns quantile-normalised and categorical columns
as +-1 one-hot coordinates (:mod:`.encoding`), one Gaussian diffusion over all of them with EDM
preconditioning and loss (Karras et al. 2022, as in TabSyn's latent diffusion, Zhang et al. 2024),
a residual MLP, an EMA of the weights, and the project's DPM-Solver++ sampler.  When the target
column is categorical the model is conditioned on it, so ``condition={target: value}`` is exact;
unconditional samples draw the target from its training frequencies first (as TabDDPM does).
Training, EMA, checkpoints and ``resume`` are the image models' own pieces.

>>> from diffusio.tabular.datasets import load_table
>>> df, target = load_table("wine")
>>> model = TableDiffusion(steps=30, width=32, depth=1).fit(df, target=target)
>>> synth = model.sample(5, seed=0)
>>> list(synth.columns) == list(df.columns), len(synth)
(True, 5)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from diffusio._precision import bf16_autocast, use_bf16
from diffusio.errors import UsageError
from diffusio.generative.checkpoint import files as ckpt
from diffusio.generative.conditioning.class_guide import check_redraws
from diffusio.generative.core.denoiser import EDMDenoiser
from diffusio.generative.core.guidance import CFGDenoiser, check_interval, check_scale
from diffusio.generative.core.samplers import get_sampler
from diffusio.generative.core.schedules import get_sigmas_karras
from diffusio.generative.training.fitting import Progress, load_fit_state, optimiser_step, save_fit_state
from diffusio.generative.training.schedule import learning_rate, report_unfinished_cooldown
from diffusio.generative.training.loop import run_loop
from diffusio.generative.training.losses import edm_loss
from diffusio.tabular.derived import DerivedColumn, apply_derived, find_derived
from diffusio.tabular.relations import Relation, find_relations, from_leftovers, to_leftovers
from diffusio.tabular.lookups import LookupColumn, apply_lookups, find_lookups
from diffusio.tabular.label_check import TreeEnsemble, fit_label_check
from diffusio.tabular.mixing import ColumnMixer, column_groups, largest_cross_correlation
from diffusio.tabular.encoding import (Column, TableEncoder, check_table, decode_categorical, describe_column,
                                       is_categorical)
from diffusio.tabular.net import TableNet
from diffusio.tabular.redraw import find_blurred, redraw_unlikely
from diffusio.tabular.settings import check_bar, check_seed, check_settings
from diffusio.tabular.storage import KIND, restore, table_config, table_tensors

SIGMA_MAX = 10.0   # data are unit-scale; EDM's 80 (for pixels in [-1, 1]) would spend steps on pure noise
MAX_REJECTION_DRAWS = 50   # rounds of rejection sampling for a condition on a non-target column
SMALL_TABLE = 1000         # rows under which fit mixes columns by default (mix=None): see mixing.py
SMALL_TABLE_MIX = 0.7      # breast-cancer (455 rows): DCR passes on 3 of 3 seeds, detection unchanged
INDEPENDENT_GROUPS = 0.1   # groups this uncorrelated lose nothing pairwise to mixing (churn 0.05; credit 0.49)
SMALL_TABLE_STEPS = 2700   # under SMALL_TABLE rows: breast-cancer passes the DCR check on 3 seeds of 3 (6,000: 0 of 3)
STEPS_PER_ROW = 0.6        # about 600 passes over the rows: diamonds (43,152 rows) meets detection at 24,000 steps
MIN_STEPS = 6000           # credit (3,563 rows) passes the DCR check at 6,000 steps and fails it at 12,000
MAX_STEPS = 24000          # a 50,000-row fit stays within minutes


def default_steps(rows: int) -> int:
    """Training steps for a table of ``rows`` rows when none are given.  One fixed count gives a
    large table too few passes over its rows (diamonds: detection AUC 0.684 at 6,000 steps, 0.637 at
    24,000) and a small one so many that its rows are learned by heart (the DCR check fails on
    credit at 12,000 steps, on breast-cancer at 6,000).  So: about 600 passes over the rows, between
    6,000 and 24,000 steps, and 2,700 under 1,000 rows, where column mixing is on too
    (docs/benchmarks-tabular.md, "Steps that grow with the table").

    >>> default_steps(455), default_steps(4_000), default_steps(30_000), default_steps(43_152)
    (2700, 6000, 18000, 24000)
    """
    if rows < SMALL_TABLE:
        return SMALL_TABLE_STEPS
    return int(min(MAX_STEPS, max(MIN_STEPS, round(STEPS_PER_ROW * rows, -2))))


@dataclass
class TableDiffusion:
    """A diffusion model for mixed-type tables, scikit-learn style: ``fit(df)``, ``sample(n)``.

    Parameters: ``steps`` training steps (None: :func:`default_steps` of the table's rows; ``minutes``
    stops earlier at a wall-time budget);
    ``width``/``depth`` of the MLP; ``batch_size``, ``lr``, ``ema_decay`` of training;
    ``cooldown``: the last fraction of ``steps`` over which the learning rate falls linearly to zero
    (0: constant); ``p_mean``, ``p_std``: training noise levels are log-normal, ``log sigma ~
    N(p_mean, p_std^2)`` (EDM's P_mean and P_std).  0.5, not EDM's -1.2 for images: what sets a
    row's class apart is settled at the larger noise levels, which -1.2 seldom trains (sigma in [1, 3]
    on 13 % of the steps, against 35 % at 0.5); churn's ML efficacy rose from 0.69 to 0.75-0.80 with
    it (docs/benchmarks-tabular.md);
    ``sample_steps`` and ``sampler`` (any of :data:`~diffusio.generative.core.samplers.PLAIN_SAMPLERS`)
    for sampling; ``guidance``: classifier-free guidance on the target's class (1: plain
    conditional; above 1 sharpens what tells the classes apart), learned by dropping the class with
    probability ``cond_dropout`` in training; ``guidance_interval``: ``(lo, hi)`` noise levels where
    the guidance applies, plain conditional elsewhere (Kynkaanniemi et al. 2024; None: every level):
    on churn, guidance 2 in ``(1, 10]`` kept two thirds of its gain in ML efficacy and, unlike plain
    guidance, passed the DCR check on four fits of four with detection at chance
    (docs/benchmarks-tabular.md); ``seed`` fixes the initial weights and every batch, so the same
    seed and the same ``steps`` give the same model.  ``bf16``: run the network in bfloat16 when sampling (``on``;
    ``auto``: where the CPU computes bfloat16 natively, see :mod:`diffusio._precision`): about
    2x faster there (1.9x on 2 cores, 2.3x on one), and rows that differ from float32's in their last digits (same seed, same
    machine: same rows).  ``mix``: the share of training rows whose groups of correlated columns
    (correlation ``mix_threshold`` or more) come from another row of the same class, so that a
    small table is not learned by heart (:mod:`.mixing`); None (default): 0.7 for a table under
    1,000 rows, and for a larger one with a label check whose column groups are uncorrelated with
    one another (what mixing blurs there, the check redraws), off otherwise.  ``derive``: find numeric columns that are an exact rule of another
    (churn's charges are its minutes times a tariff) and recompute them from it after sampling, so
    every sampled row obeys the rule (:mod:`.derived`).  ``relate``: find numeric columns that a
    product of powers of others gives to within 5 % of their spread (diamonds' depth is 100 z /
    mean(x, y) to one decimal) and learn what the law leaves over instead of the column, so sampled
    rows keep the law as real ones do (:mod:`.relations`).  ``lookup``: find numeric columns that one
    or two categorical columns determine (flights' distance is its route's, ``(origin, dest)``) and
    write each sampled row's value from the table (:mod:`.lookups`).  ``label_check``: with a categorical
    target, fit a booster of the target on the training rows (:mod:`.label_check`) and find the
    classes the model draws less recognisably than the real rows are ("blurred"); ``sample`` draws
    again, up to ``redraws`` times, the rows of a blurred class the booster gives under 0.7 (or the
    class's real median, if lower) for their own class, keeping each row's best try (the class, and
    so the class mix, never changes); ``redraw_below``: a number redraws every class's rows under it
    instead.  Churn's synthetic churners looked like non-churners
    and taught a weaker rule (docs/benchmarks-tabular.md, "Label check").
    """

    steps: int | None = None
    minutes: float | None = None
    width: int = 128
    depth: int = 3
    batch_size: int = 1024
    lr: float = 2e-3
    cooldown: float = 0.0
    p_mean: float = 0.5  # EDM's -1.2 (for images) rarely trains the noise levels where a row's class shows
    p_std: float = 1.2
    ema_decay: float = 0.999
    sample_steps: int = 16
    sampler: str = "dpmpp-2m"
    guidance: float = 1.0
    guidance_interval: tuple[float, float] | None = None
    cond_dropout: float = 0.1
    seed: int = 0
    quiet: bool = True
    every: int = 500
    bf16: str = "off"
    mix: float | None = None
    mix_threshold: float = 0.5
    derive: bool = True
    relate: bool = True
    lookup: bool = True
    label_check: bool = True
    redraws: int = 4
    redraw_below: float | None = None

    def __post_init__(self):
        check_settings(self)
        self.encoder: TableEncoder | None = None
        self.derived: list[DerivedColumn] = []
        self.relations: list[Relation] = []
        self.lookups: list[LookupColumn] = []
        self.check: TreeEnsemble | None = None
        self.blurred: list[int] | None = None  # class codes the label check redraws by default (found lazily)
        self.redrawn = {"rows": 0, "redrawn": 0, "under_bar": 0}  # what the last sample() redrew
        self.target: Column | None = None
        self.total_steps: int | None = None   # steps, or default_steps of the fitted table
        self.run = Progress()

    # ------------------------------------------------------------------ fit
    def fit(self, df: pd.DataFrame, target: str | None = None, *, out: str | Path | None = None,
            resume: bool = False) -> "TableDiffusion":
        """Learn the table.  ``target``: the column to predict (a categorical one is also what
        ``sample(condition=...)`` conditions on exactly).  ``out``: a folder that receives the model
        and a resumable training state every ``every`` steps; ``resume=True`` continues the run in
        ``out`` from its last state."""
        check_table(df)
        df = df.rename(columns=str)
        if target is not None and str(target) not in df.columns:
            raise UsageError(f"target column {target!r} is not in the table; its columns are "
                             f"{', '.join(map(repr, df.columns[:20]))}")
        if resume and out is None:
            raise UsageError("resume needs out: the folder of the run to continue")
        conditioned = target is not None and describe_column(str(target), df[str(target)]).kind == "categorical"
        features = df.drop(columns=[str(target)]) if conditioned else df
        if features.shape[1] == 0:
            raise UsageError("the table has no column besides the target; there is nothing to generate")
        self.columns = list(df.columns)
        self.target_name = None if target is None else str(target)
        self.derived = find_derived(features) if self.derive else []
        exact = {r.name for r in self.derived}
        self.lookups = find_lookups(df, [c for c in df.columns if is_categorical(df[c])], exact | {self.target_name}) \
            if self.lookup else []
        # a column recomputed by an exact rule or looked up is neither rebuilt from a law nor a predictor of one
        self.relations = find_relations(features, skip=exact | {r.name for r in self.lookups} | {self.target_name}) \
            if self.relate else []
        learned = to_leftovers(features, self.relations)
        self.encoder = TableEncoder.fit(learned)
        self.target = describe_column(self.target_name, df[self.target_name]) if conditioned else None
        self._check_network(copies=5)  # before the label check's boosters, not after
        x = torch.from_numpy(self.encoder.encode(learned))
        cond = torch.from_numpy(self._class_codes(df[self.target_name])) if conditioned else None
        self.class_weights = (np.bincount(cond.numpy(), minlength=len(self.target.categories)) / len(cond)).tolist() \
            if conditioned else None
        # the check is fitted before training so that every checkpoint carries it (same seed, same trees)
        self.check = fit_label_check(x.numpy(), cond.numpy(), self.seed) if conditioned and self.label_check else None
        self.blurred = None
        mixer = self._mixer(x, cond)
        self.total_steps = self.steps if self.steps is not None else default_steps(len(x))
        self._build()
        self.run = Progress()
        opt = torch.optim.Adam(self.denoiser.parameters(), lr=self.lr)
        gen = torch.Generator().manual_seed(self.seed)
        if resume:
            self._resume(Path(out), opt, gen)

        def train_step() -> float:
            for group in opt.param_groups:  # no warm-up: a constant rate unless a cool-down is asked for
                group["lr"] = learning_rate(self.run.step, self.lr, warmup=1, total=self.total_steps, cooldown=self.cooldown)
            rows = torch.randint(0, len(x), (self.batch_size,), generator=gen)
            labels = None
            if cond is not None:  # classes 1..k; 0 (dropped) teaches the unconditional model guidance needs
                labels = torch.where(torch.rand(self.batch_size, generator=gen) < self.cond_dropout, 0, cond[rows] + 1)
            batch = x[rows] if mixer is None else mixer(rows, gen)
            loss = edm_loss(self.denoiser, batch, labels, gen, self.p_mean, self.p_std)
            return optimiser_step(loss, opt, self.denoiser, self.ema, self.run, self.ema_decay)

        def checkpoint() -> None:
            if out is not None:
                self._save_state(Path(out), opt, gen)

        if out is not None:
            Path(out).mkdir(parents=True, exist_ok=True)
        self.denoiser.train()
        run_loop(self.run, train_step, checkpoint, total=self.total_steps, every=self.every,
                 minutes=self.minutes or 0, desc="fit", quiet=self.quiet)
        report_unfinished_cooldown(self.run.step, self.total_steps, self.cooldown, self.lr, 1)
        self.denoiser.eval()
        if self.check is not None:
            find_blurred(self)  # found on the finished model and saved with it
        if out is not None:
            self._save_state(Path(out), opt, gen)
        return self

    def _mixer(self, x: torch.Tensor, cond: torch.Tensor | None) -> ColumnMixer | None:
        """Column mixing at the rate ``mix``.  None: SMALL_TABLE_MIX for a table under SMALL_TABLE
        rows, whose rows a long fit learns by heart, and for a larger one whose column groups are
        uncorrelated with one another (largest cross-group |r| under INDEPENDENT_GROUPS) when a label
        check will redraw the rows that mixing blurs: churn, whose class rides on sums across groups
        (mixing alone cost it ML efficacy, 0.77 -> 0.71; with the check 0.98), and whose rows a
        checked fit otherwise brings as close to the training rows as new real ones; off elsewhere
        (credit, whose groups correlate up to 0.49: detection 0.60 -> 0.73 when mixed)."""
        blocks, start = [], 0
        for col in self.encoder.columns:
            blocks.append((start, col.width))
            start += col.width
        groups = column_groups(x.numpy(), blocks, self.mix_threshold)
        if self.mix is not None:
            self.mixed = float(self.mix)
        elif len(x) < SMALL_TABLE:
            self.mixed = SMALL_TABLE_MIX
        else:
            independent = self.check is not None and largest_cross_correlation(x.numpy(), groups) < INDEPENDENT_GROUPS
            self.mixed = SMALL_TABLE_MIX if independent else 0.0
        return ColumnMixer(x, groups, cond, self.mixed) if self.mixed else None

    def _class_codes(self, series: pd.Series) -> np.ndarray:
        index = {c: i for i, c in enumerate(self.target.categories)}
        return np.array([index[None] if pd.isna(v) else index[v.item() if isinstance(v, np.generic) else v]
                         for v in series], dtype=np.int64)

    def _check_network(self, copies: int) -> None:
        """A named error, not an allocator's traceback, for a network of ``copies`` float32 copies
        (weights and EMA to sample; also gradients and Adam's two moments to train) the machine
        cannot hold (found by the fuzz: width=10^9)."""
        from diffusio._resources import check_memory

        w, classes = self.width, len(self.target.categories) if self.target else 0
        weights = self.depth * 4 * w * w + 2 * w * w + 2 * self.encoder.width * w + (classes + 1) * 2 * w + 64 * w
        check_memory(4.0 * copies * weights, f"a network of width={w} and depth={self.depth}",
                     "choose a smaller width or depth")

    def _build(self) -> None:
        self._check_network(copies=2)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            net = TableNet(self.encoder.width, len(self.target.categories) if self.target else 0, self.width, self.depth)
        self.denoiser = EDMDenoiser(net, sigma_data=1.0, sigma_max=SIGMA_MAX)
        self.ema = EDMDenoiser(TableNet(self.encoder.width, net.classes, self.width, self.depth),
                               sigma_data=1.0, sigma_max=SIGMA_MAX)
        self.ema.load_state_dict(self.denoiser.state_dict())
        self.ema.requires_grad_(False).eval()

    # --------------------------------------------------------------- sample
    @torch.no_grad()
    def sample(self, n: int, seed: int = 0, condition: dict | None = None,
               guidance: float | None = None, guidance_interval: tuple[float, float] | None = None,
               bf16: str | None = None, redraws: int | None = None, redraw_below: float | None = None,
               progress: bool = False) -> pd.DataFrame:
        """``n`` new rows as a DataFrame with the training table's columns and dtypes.

        ``condition``: ``{column: value}`` -- every row takes that value.  On a categorical target
        the model is conditioned directly; on another categorical column rows are drawn until
        enough match (an error, not a short table, if the value is too rare for that).
        ``guidance``: classifier-free guidance on the target's class (default: the model's);
        ``guidance_interval``: ``(lo, hi)`` noise levels it applies at (default: the model's);
        ``bf16``: ``auto``, ``on`` or ``off`` (default: the model's); ``redraws``, ``redraw_below``:
        how often, and under what probability of its class, the label check draws a row again
        (default: the model's; 0 redraws: never).  ``self.redrawn`` then says how many rows were
        drawn again and how many stayed under the bar after the last try (kept: the table is never
        short).  ``progress``: a bar over the sampler's steps, redraw rounds included.
        """
        scale = self.guidance if guidance is None else check_scale(guidance)
        check_seed(seed, "seed")
        again = (self.redraws if redraws is None else check_redraws(redraws),
                 self.redraw_below if redraw_below is None else check_bar(redraw_below))
        if (redraw_below is not None or redraws) and self.check is None and self.encoder is not None:
            raise UsageError("redraws and redraw_below need a label check, and this model has none (its target is not "
                             "categorical, or it was fitted with label_check=False); leave them out")
        interval = self.guidance_interval if guidance_interval is None else check_interval(guidance_interval)
        fast = use_bf16(self.bf16 if bf16 is None else bf16)
        if self.encoder is None:
            raise UsageError("the model is not fitted; call fit(df) or TableDiffusion.load(path) first")
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
            raise UsageError(f"n must be a positive whole number of rows, got {n!r}")
        from diffusio._resources import check_memory  # found by the fuzz: n=10^12 was a MemoryError traceback

        check_memory(1024.0 * n, f"n={n:,} rows", "sample fewer rows")
        column, value = self._check_condition(condition)
        self.redrawn = {"rows": 0, "redrawn": 0, "under_bar": 0}
        with tqdm(total=0, desc="sample", unit="step", disable=not progress) as bar:
            return self._conditioned(n, seed, column, value, (scale, interval, fast, again, bar))

    def _conditioned(self, n: int, seed: int, column: str | None, value, how: tuple) -> pd.DataFrame:
        """``n`` rows, every one with ``column=value`` (None: no condition); ``how``: ``_draw``'s settings."""
        if column is None or column == self.target_name:
            return self._draw(n, seed, value, *how)
        rows, drawn, gen_seed = [], 0, seed
        for _ in range(MAX_REJECTION_DRAWS):
            batch = self._draw(max(n, 1024), gen_seed, None, *how)
            gen_seed += 1_000_003
            drawn += len(batch)
            rows.append(batch[batch[column].map(lambda v: _same(v, value))])
            if sum(map(len, rows)) >= n:
                return pd.concat(rows).iloc[:n].reset_index(drop=True)
        got = sum(map(len, rows))
        raise UsageError(f"only {got} of {drawn:,} sampled rows had {column}={value!r} (needed {n}); the value is "
                         f"too rare to reach by rejection -- fit with target={column!r} to condition on it directly")

    def _check_condition(self, condition: dict | None):
        if not condition:
            return None, None
        if not isinstance(condition, dict) or len(condition) != 1:
            raise UsageError(f"condition must be one {{column: value}} pair, got {condition!r}")
        (column, value), = condition.items()
        col = self.target if column == self.target_name and self.target else None
        if col is None:
            if column not in self.columns:
                raise UsageError(f"condition names column {column!r}, which is not in the table; columns: "
                                 f"{', '.join(map(repr, self.columns[:20]))}")
            col = self.encoder.column(column) if column != self.target_name else None
            if col is None or col.kind != "categorical":
                raise UsageError(f"condition column {column!r} is numeric; conditions take a categorical column")
        match = [c for c in col.categories if _same(c, value)]
        if not match:
            raise UsageError(f"condition {column}={value!r}: the model never saw that value; known values: "
                             f"{', '.join(map(repr, col.categories[:20]))}")
        return column, match[0]

    def _draw(self, n: int, seed: int, value, guidance: float, interval: tuple[float, float] | None,
              bf16: bool, again: tuple[int, float | None], bar: tqdm | None = None) -> pd.DataFrame:
        """``n`` rows from seed ``seed``; ``value``: the target's category every row takes (None:
        drawn from the training frequencies); ``again``: the label check's (redraws, redraw_below);
        ``bar``: the progress bar that counts the sampler's steps."""
        gen = torch.Generator().manual_seed(int(seed))
        codes = None
        if self.target is not None:
            if value is None:
                codes = torch.multinomial(torch.tensor(self.class_weights, dtype=torch.float64), n,
                                          replacement=True, generator=gen)
            else:
                codes = torch.full((n,), self.target.categories.index(value), dtype=torch.long)
        x = self._coordinates(n, codes, gen, guidance, interval, bf16, bar)
        redraws, below = again
        if self.check is not None and codes is not None and redraws:
            table = redraw_unlikely(self, x, codes, redraws, below, lambda rows, round_seed: self._coordinates(
                len(rows), codes[rows], torch.Generator().manual_seed(round_seed), guidance, interval, bf16, bar), seed)
        else:
            table = self._written(x, codes)
        return table[self.columns]

    def _written(self, x: torch.Tensor, codes: torch.Tensor | None) -> pd.DataFrame:
        """Encoded rows of classes ``codes`` as they will be written: decoded, their lookups, laws
        and exact rules applied."""
        table = self.encoder.decode(x.numpy())
        if self.target is not None:
            table[self.target_name] = decode_categorical(self.target, np.eye(len(self.target.categories))[codes.numpy()])
        return apply_derived(from_leftovers(apply_lookups(table, self.lookups), self.relations), self.derived)

    def _coordinates(self, n: int, codes: torch.Tensor | None, gen: torch.Generator, guidance: float,
                     interval: tuple[float, float] | None, bf16: bool, bar: tqdm | None = None) -> torch.Tensor:
        """Encoded rows from the sampler: ``n`` rows, of classes ``codes`` (None: the model has none)."""
        sigmas = get_sigmas_karras(self.sample_steps, self.ema.sigma_min, SIGMA_MAX)
        if bar is not None:
            bar.total += len(sigmas) - 1
            bar.refresh()
        noise = torch.randn((n, self.encoder.width), generator=gen) * sigmas[0]
        denoiser = self.ema if codes is None else CFGDenoiser(self.ema, guidance, interval=interval)
        tick = None if bar is None else (lambda _: bar.update(1))
        with bf16_autocast(bf16):
            return get_sampler(self.sampler)(denoiser, noise, sigmas, cond=None if codes is None else codes + 1,
                                             generator=gen, callback=tick).float()

    # ---------------------------------------------------------- save / load
    def save(self, path: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (EMA weights and quantile tables) into ``path``."""
        if self.encoder is None:
            raise UsageError("the model is not fitted; there is nothing to save")
        ckpt.save_model(path, table_config(self), table_tensors(self))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> "TableDiffusion":
        """A fitted model from a folder written by :meth:`save` or by ``fit(out=...)``."""
        config = ckpt.load_config(path)
        if config.get("kind") != KIND:
            raise UsageError(f"{path} holds a {config.get('kind', 'image')} model, not a table model; "
                             "point at a folder written by `diffusio tabular fit`")
        tensors = ckpt.load_tensors(Path(path) / "model.safetensors")
        model = cls(**{**config["settings"], "quiet": True})
        restore(model, config, tensors)
        return model

    def _save_state(self, out: Path, opt: torch.optim.Optimizer, gen: torch.Generator) -> None:
        self.save(out)
        save_fit_state(out, self.run, self.denoiser.net, self.ema.net, opt, gen, table_config(self))

    def _resume(self, out: Path, opt: torch.optim.Optimizer, gen: torch.Generator) -> None:
        mine = json.loads(json.dumps({"encoder": self.encoder.to_json(), "target_name": self.target_name}))
        self.run = load_fit_state(out, self.denoiser.net, self.ema.net, opt, gen, table_config(self),
                                  lambda saved: all(saved.get(k) == v for k, v in mine.items()))


def _same(a, b) -> bool:
    """A category and a condition value are the same when equal or when they print the same
    (the command line passes every value as text)."""
    if a is None or b is None:
        return a is None and b is None
    return a == b or str(a) == str(b)
