"""The friendly API: ``Generator.load("fashion").generate("a sneaker", n=16, steps=20, seed=0)``.

>>> from diffusio.generative import Generator
>>> gen = Generator.load("fashion")
>>> gen.generate("a pair of jeans", n=2, steps=10, seed=0).shape
(2, 28, 28)
>>> gen.generate(label="Bag", n=1, steps=10, seed=0).dtype
dtype('uint8')
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from diffusio._precision import bf16_autocast, use_bf16
from diffusio._resources import check_memory
from diffusio.errors import Cancelled, UsageError
from diffusio.generative.data.datasets import to_uint8
from diffusio.generative.conditioning.class_guide import MAX_REDRAWS, check_nudges
from diffusio.generative.core.guidance import check_scale, limited_interval
from diffusio.generative.checkpoint.models import LoadedModel, load_guide, load_model
from diffusio.generative.core.samplers import SAMPLERS
from diffusio.generative.core.sampling import initial_noise, sample
from diffusio.generative.core.schedules import SCHEDULES, get_sigmas
from diffusio.generative.trust.watermark import marking

BACKENDS = ("torch", "onnxruntime")
CHUNK = 256  # images per batch: bounds memory, and fixes how seeds map to images


def chunk_seed(seed: int, chunk: int) -> int:
    """The seed of one chunk's first draw (its start noise): how a call's seed maps to its images."""
    return seed * 1_000_003 + chunk


def _step_done(bar, should_stop) -> None:
    bar.update(1)
    if should_stop is not None and should_stop():
        raise Cancelled("sampling stopped: the caller's time limit was reached")


@dataclass
class Samples:
    """What :meth:`Generator.sample` made."""

    images: torch.Tensor  # [N, C, H, W] float in [-1, 1]
    nfe: float            # network evaluations per image, redraws included (a guided one counts once)
    seconds: float
    unnamed: int = 0      # images the class guide still did not see as their class after the last redraw

    def uint8(self) -> np.ndarray:
        """``[N, H, W]`` for grey images, ``[N, H, W, 3]`` for colour."""
        return to_uint8(self.images.numpy())


class Generator:
    """A trained model plus its default sampling settings."""

    def __init__(self, model: LoadedModel):
        self.model = model
        self._backend_denoiser = None  # an onnxruntime denoiser, when use_onnx() was called
        self._guides: dict[str, LoadedModel] = {}  # autoguidance guides by name, loaded on first use
        self._class_guide = None  # the model's class guide, loaded on first use
        self.defaults = {"sampler": "dpmpp-2m", "steps": 20, "schedule": "karras", "guidance": 3.0,
                         **model.config.get("sampling", {})}

    @classmethod
    def load(cls, name_or_path: str | Path = "fashion", backend: str = "torch",
             onnx: str | Path | None = None) -> "Generator":
        """Load a shipped model by name (``fashion``) or a run directory written by ``diffusio train``.

        ``backend="onnxruntime"`` evaluates the network with onnxruntime, from ``onnx`` (a file
        written by ``diffusio export``, e.g. an int8 one) or from an export cached on first use.
        """
        if backend not in BACKENDS:
            raise UsageError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        gen = cls(load_model(name_or_path))
        if backend == "onnxruntime" or onnx is not None:
            gen.use_onnx(onnx)
        return gen

    def use_onnx(self, path: str | Path | None = None) -> None:
        """Evaluate the denoiser with onnxruntime from now on (exporting it to a cache if no path is given)."""
        from diffusio.generative.cheap.export import cached_onnx_denoiser

        self._backend_denoiser = cached_onnx_denoiser(self.model, path)

    @property
    def backend(self) -> str:
        return "torch" if self._backend_denoiser is None else "onnxruntime"

    @property
    def denoiser(self):
        return self.model.denoiser if self._backend_denoiser is None else self._backend_denoiser

    @property
    def class_names(self) -> list[str] | None:
        return self.model.class_names

    # ---------------------------------------------------------- conditioning
    def label_index(self, label: int | str) -> int:
        names = self.class_names or []
        if self.model.class_embeddings is None:
            raise UsageError("this model has no classes; drop --label")
        if isinstance(label, str) and not label.lstrip("-").isdigit():
            lowered = [n.lower() for n in names]
            if label.lower() not in lowered:
                raise UsageError(f"unknown label {label!r}; this model knows: {', '.join(names)}")
            return lowered.index(label.lower())
        index = int(label)
        if not 0 <= index < len(names):
            raise UsageError(f"label {index} out of range; use 0..{len(names) - 1} or a name: {', '.join(names)}")
        return index

    def condition(self, n: int, prompt: str | Sequence[str] | None = None,
                  label: int | str | Sequence[int | str] | None = None,
                  attrs: dict[str, float] | None = None) -> torch.Tensor | None:
        """One condition vector per image, or None for unconditional sampling.

        ``attrs`` asks models trained with attributes for image features, each a rank in [0, 1]
        within the class, e.g. ``{"brightness": 0.2, "width": 0.9}``.
        """
        base = self._base_condition(n, prompt, label)
        wanted = self.model.attributes
        if wanted is None:
            if attrs:
                raise UsageError("this model takes no attributes; drop --attr, or use a model trained with "
                                 "--attributes (e.g. fashion-attr)")
            return base
        if base is None and not attrs:
            return None  # unconditional
        text_dim = self.model.config["conditioning"]["text_dim"]
        base = torch.zeros(n, text_dim) if base is None else base[:, :text_dim]  # class rows carry zeros
        return torch.cat([base, wanted.vectors(attrs, n)], 1)

    def _base_condition(self, n: int, prompt, label) -> torch.Tensor | None:
        if prompt is not None and label is not None:
            raise UsageError("give a prompt or a label, not both")
        if prompt is not None:
            if self.model.cond_kind != "text":
                raise UsageError(f"this model is not text-conditioned (conditioning: {self.model.cond_kind}); "
                                 "use --label or no prompt")
            from diffusio.generative.conditioning.text import encode

            prompts = [prompt] * n if isinstance(prompt, str) else list(prompt)
            for text in prompts:
                try:
                    text.encode("utf-8")
                except (UnicodeEncodeError, AttributeError):
                    raise UsageError(f"prompt must be text (valid UTF-8), got {text!r}") from None
            if len(prompts) != n:
                raise UsageError(f"got {len(prompts)} prompts for n={n}; give one prompt or n prompts")
            return torch.from_numpy(encode(prompts))
        if label is not None:
            labels = [label] * n if isinstance(label, (int, str, np.integer)) else list(label)
            if len(labels) != n:
                raise UsageError(f"got {len(labels)} labels for n={n}; give one label or n labels")
            return self.model.class_embeddings[[self.label_index(v) for v in labels]].float()
        return None

    # ---------------------------------------------------------- sampling
    def check_room(self, n: int, what: str, fix: str) -> None:
        """Refuse, before any list or array is built, ``n`` images that would not fit in memory."""
        c, h, w = self.model.image_shape
        check_memory(float(n) * c * h * w * 4 * 3, what, fix)

    def check_options(self, n: int, steps: int, sampler: str, guidance: float, schedule: str,
                      early_stop: float | None = None, tol: float | None = None) -> None:
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise UsageError(f"n must be a positive integer, got {n!r}")
        self.check_room(n, f"n={n} images", "generate fewer at a time (several calls with other seeds)")
        if not isinstance(steps, (int, np.integer)) or steps < 1:
            raise UsageError(f"steps must be a positive integer, got {steps!r}")
        if sampler not in SAMPLERS:
            raise UsageError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
        if schedule not in SCHEDULES:
            raise UsageError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
        check_scale(guidance)
        if early_stop is not None and not early_stop > 0:
            raise UsageError(f"early-stop tolerance must be > 0, got {early_stop}")
        if schedule == "distilled":
            stored = self.defaults.get("sigmas", {})
            if str(steps) not in stored:
                raise UsageError(f"this model has no distilled schedule for {steps} steps; "
                                 + (f"use --steps {' or '.join(sorted(stored, key=int))}" if stored
                                    else "it is not a distilled student: use --schedule karras"))
        if early_stop is not None and sampler in ("ddpm", "adaptive", "consistency"):
            raise UsageError(f"--early-stop does not apply to the {sampler} sampler; use a deterministic one "
                             "such as dpmpp-2m")
        if tol is not None and sampler != "adaptive":
            raise UsageError("--tol sets the adaptive sampler's tolerance; add --sampler adaptive or drop --tol")
        if tol is not None and not 0 < tol < 1:
            raise UsageError(f"--tol must be in (0, 1), got {tol}")

    def sample(self, prompt: str | Sequence[str] | None = None, n: int = 16, *, label=None, steps: int | None = None,
               sampler: str | None = None, guidance: float | None = None, schedule: str | None = None,
               seed: int = 0, progress: bool = False, early_stop: float | None = None,
               tol: float | None = None, attrs: dict[str, float] | None = None,
               watermark: bool | str | None = None, attr_guidance: float | None = None,
               attr_prompt_guidance: float | None = None,
               guidance_interval: tuple[float, float] | None = None,
               autoguidance: float | None = None, guide: str | Path | None = None,
               autoguidance_interval: tuple[float, float] | None = None,
               should_stop: Callable[[], bool] | None = None, bf16: str | None = None,
               classifier_guidance: float | None = None, redraws: int | None = None,
               redraw_below: dict[str, float] | None = None, nudges: Sequence[float] | None = None) -> "Samples":
        """The one sampling entry point: :class:`Samples` (images in [-1, 1], float NCHW, with the
        network evaluations and seconds it took).  :meth:`generate` is the same as uint8 pixels.

        ``watermark``: None or True (the default) marks the images with the default key
        ($DIFFUSIO_WATERMARK_KEY, else the public "diffusio"), a string with that key, False not at
        all (see :mod:`watermark`).
        ``attr_guidance``: guidance of the ``attrs`` wishes apart from the prompt (default: the
        model's ``attr_guidance``, else ``guidance``); larger follows them more closely.
        ``attr_prompt_guidance``: guidance of the prompt, at every noise level, in images with ``attrs``
        wishes (default: the model's ``attr_prompt_guidance``, else as without wishes): holds the class
        against wishes on shape.
        ``guidance_interval``: (lo, hi) noise levels where guidance applies (default: the model's
        ``guidance_interval``, else everywhere); ``(0, inf)`` guides everywhere.
        ``autoguidance``: the scale of guidance away from ``guide``, a weaker version of this model
        (default: the model's ``autoguidance`` and ``guide``; 1 turns it off), see :mod:`guidance`;
        ``autoguidance_interval``: (lo, hi) noise levels where it applies (default: the model's
        ``autoguidance_interval``, else everywhere; one network pass a step outside).
        ``classifier_guidance``: how hard the model's class guide steers each image toward the class
        its prompt or label names (default: the model's ``classifier_guidance``, else 0 = off), see
        :mod:`~diffusio.generative.conditioning.class_guide`.
        ``redraws``: how many times to draw again (new noise, same prompt) an image in which the class
        guide's check classifier does not see the class its prompt or label names (probability under
        ``class_guide.NAMED_AT``; default: the model's ``redraws``, else 0 = never); an image still
        unnamed after the last try is kept as its best try and counted in ``Samples.unnamed``.
        ``redraw_below``: class name -> a lower (or higher) bar than ``NAMED_AT`` for that class's images,
        e.g. ``{"Shirt": 0.3}``, on top of the model's own ``redraw_below`` (a class given here
        replaces the model's bar for it; 0.8 puts back the default), see ``ClassGuide.named_at``.
        ``nudges``: classifier-guidance scales of the first redraw rounds, e.g. ``(2, 4)``: round r
        samples a missed image again from its own start noise, steered toward its class at scale
        ``nudges[r - 1]``, so it changes only as much as it must (later rounds draw new noise; default:
        the model's ``nudges``, else none); docs/benchmarks.md, "Where the redraws' FD goes".
        ``should_stop``: asked after every step; True raises :class:`~diffusio.errors.Cancelled`
        (a server's time limit stops the work, not just the answer).
        ``bf16``: the network's matrix products in bfloat16 (``on``; ``auto``: where the CPU computes
        it natively, see :mod:`diffusio._precision`; default: the model's ``bf16``, else ``off``):
        1.6-1.8x faster there, other pixels than float32 for the same seed (docs/benchmarks.md).
        """
        started = time.perf_counter()
        steps = self.defaults["steps"] if steps is None else steps
        sampler = self.defaults["sampler"] if sampler is None else sampler  # "" is refused, not the default
        schedule = self.defaults["schedule"] if schedule is None else schedule
        guidance = self.defaults["guidance"] if guidance is None else guidance
        self.check_options(n, steps, sampler, guidance, schedule, early_stop, tol)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2 ** 32:
            raise UsageError(f"seed must be an integer in [0, {2 ** 32 - 1}], got {seed!r}")
        interval = self._guidance_interval(guidance_interval)
        fast = use_bf16(self.defaults.get("bf16", "off") if bf16 is None else bf16)
        if bf16 == "on" and self.backend != "torch":
            raise UsageError("bf16='on' applies to the torch backend; drop it (or --bf16) for onnxruntime")
        options = {"rtol": tol} if tol is not None else {}
        cond = self.condition(n, prompt, label, attrs)
        attr_guidance = self._attr_guidance(attr_guidance, guidance, attr_prompt_guidance)
        autoguide = self._autoguide(autoguidance, guide, autoguidance_interval)
        steer = self._class_guidance(classifier_guidance, cond)
        redraws, wishes, bars = self._redraws(redraws, cond, redraw_below)
        nudges = (check_nudges(nudges, redraws) if nudges is not None  # the model's own: as many as its rounds reach
                  else check_nudges(self.defaults.get("nudges"), MAX_REDRAWS)[:redraws])
        start_noise = marking(watermark, self.model.image_shape)  # the trust layer marks the start noise
        sigmas = torch.tensor(self.defaults["sigmas"][str(steps)]) if schedule == "distilled" else None
        chunks = range(0, n, CHUNK)
        bar = tqdm(total=len(chunks) * steps, desc="sampling", unit="step", disable=not progress)
        evaluations, unnamed = 0.0, 0

        def draw(rows: torch.Tensor, seed: int, x: torch.Tensor | None = None, nudge: float = 0.0) -> torch.Tensor:
            nonlocal evaluations
            stats = {}
            guided = steer if not nudge else (self._class_guide.net, wishes, nudge)
            images = sample(self.denoiser, len(rows), self.model.config["image"],
                            cond=None if cond is None else cond[rows], steps=steps,
                            sampler=sampler, guidance=guidance, seed=seed, x=x,
                            schedule=schedule, sigmas=sigmas, callback=lambda _: _step_done(bar, should_stop),
                            early_stop=early_stop, options=options, stats=stats, start_noise=start_noise,
                            attr_guidance=attr_guidance, guidance_interval=interval, autoguidance=autoguide,
                            classifier_guidance=None if guided is None else (guided[0], guided[1][rows], guided[2]))
            evaluations += stats["nfe"] * len(rows)
            return images

        out = []
        with torch.inference_mode(), bf16_autocast(fast and self.backend == "torch"):
            for k, start in enumerate(chunks):
                rows = torch.arange(start, min(n, start + CHUNK))
                images = draw(rows, chunk_seed(seed, k))
                if redraws:
                    own = None if not nudges else self._start_noise(len(rows), chunk_seed(seed, k), start_noise,
                                                                     sigmas, schedule, steps)
                    images, missed = self._redraw(images, rows, wishes, bars, redraws, draw, (seed, k), bar, steps,
                                                  nudges, own)
                    unnamed += missed
                out.append(images)
        bar.close()
        return Samples(torch.cat(out), evaluations / n, time.perf_counter() - started, unnamed)

    def _redraw(self, images: torch.Tensor, rows: torch.Tensor, wishes: torch.Tensor, bars: torch.Tensor,
                redraws: int, draw, key: tuple[int, int], bar, steps: int, nudges: tuple[float, ...] = (),
                own: torch.Tensor | None = None) -> tuple[torch.Tensor, int]:
        """Draw again, up to ``redraws`` times, the images in which the class guide does not see a
        wished class (its probability under the row's bar), keeping each image's best try; also how
        many stay unnamed.  Each round's noise comes from (seed, chunk, round), so the same seed gives
        the same images; the first ``len(nudges)`` rounds start again from ``own``, the chunk's own
        start noise, steered by classifier guidance at those scales."""
        from diffusio.generative.conditioning.class_guide import keep_best_of_redraws

        rounds = iter(range(redraws))  # keep_best_of_redraws asks once per round, in order

        def again(missed: torch.Tensor, seed: int) -> torch.Tensor:
            bar.total += steps
            bar.refresh()
            r = next(rounds)
            if r < len(nudges):
                return draw(rows[missed], seed, own[missed], nudges[r])
            return draw(rows[missed], seed)

        named = self._class_guide.named
        return keep_best_of_redraws(images, named(images, wishes[rows]), bars[rows], redraws, again,
                                    lambda made, missed: named(made, wishes[rows[missed]]), key)

    def _start_noise(self, n: int, seed: int, start_noise, sigmas, schedule: str, steps: int) -> torch.Tensor:
        """The start noise :func:`sample` draws for ``n`` images from ``seed`` (marked as it marks it)."""
        first = float((get_sigmas(schedule, steps, self.denoiser) if sigmas is None else sigmas)[0])
        noise, gen = initial_noise(n, self.model.config["image"], first, seed)
        return noise if start_noise is None else start_noise(noise, gen)

    def _guidance_interval(self, interval, key: str = "guidance_interval") -> tuple[float, float] | None:
        return limited_interval(self.defaults.get(key) if interval is None else interval, key)

    def _autoguide(self, scale: float | None, guide: str | Path | None, interval=None):
        """(guide denoiser, scale, interval) for :func:`sample`, or None when autoguidance is off (scale 1)."""
        scale = check_scale(self.defaults.get("autoguidance", 1.0) if scale is None else scale, "autoguidance")
        guide = self.defaults.get("guide") if guide is None else guide
        if scale == 1.0:
            return None
        key = str(guide)
        if key not in self._guides:
            self._guides[key] = load_guide(self.model, guide)
        return self._guides[key].denoiser, scale, self._guidance_interval(interval, "autoguidance_interval")

    def _class_guidance(self, scale: float | None, cond: torch.Tensor | None):
        """(classifier, wishes for every row, scale) for :func:`sample`, or None when it is off."""
        if isinstance(scale, bool):
            raise UsageError(f"classifier_guidance must be a number (0: off), got {scale!r}")
        scale = check_scale(self.defaults.get("classifier_guidance", 0.0) if scale is None else scale,
                            "classifier_guidance")
        if scale == 0 or cond is None:
            return None
        guide = self._load_class_guide(f"classifier_guidance {scale:g}")
        return guide.net, guide.wishes(cond), scale

    def _redraws(self, redraws: int | None, cond: torch.Tensor | None,
                 below: dict[str, float] | None) -> tuple[int, torch.Tensor | None, torch.Tensor | None]:
        """(number of redraws, every row's wished classes, every row's bar), or (0, None, None) when
        images are not redrawn."""
        from diffusio.generative.conditioning.class_guide import check_redraws

        redraws = check_redraws(self.defaults.get("redraws", 0) if redraws is None else redraws)
        bars = self._redraw_bars(below)
        if redraws == 0 or cond is None:
            if below:
                raise UsageError("redraw_below needs images that are drawn again, and here none are ("
                                 + ("unconditional images" if cond is None else "redraws 0")
                                 + "); give redraws N and a prompt or label, or drop it")
            return 0, None, None
        guide = self._load_class_guide(f"redraws {redraws}")
        wishes = guide.wishes(cond)
        return int(redraws), wishes, guide.named_at(wishes, bars)

    def _redraw_bars(self, below: dict[str, float] | None) -> dict[str, float]:
        """The model's own class bars (``sampling.redraw_below``), with ``below``'s on top; a class
        the model does not know is refused, also when nothing is redrawn."""
        from diffusio.generative.conditioning.class_guide import check_redraw_below

        names = self.class_names or []
        own = check_redraw_below(self.defaults.get("redraw_below"), names,
                                 f"the class bars of {self.model.path}/config.json (sampling, redraw_below)")
        return {**own, **check_redraw_below(below, names)}

    def _load_class_guide(self, what: str):
        if self._class_guide is None:
            from diffusio.generative.conditioning.class_guide import load_class_guide

            self._class_guide = load_class_guide(self.model.path, self.model.config)
        if self._class_guide is None:
            raise UsageError(f"{what} needs a class guide, and {self.model.path.name} has none; "
                             "train one with `diffusio class-guide MODEL`, or pass 0")
        return self._class_guide

    def _attr_guidance(self, scale: float | None, guidance: float,
                       prompt_scale: float | None = None) -> tuple[float, int, float | None] | None:
        """(scale, attribute block width, the prompt's guidance under wishes) for :func:`sample`, or None
        for plain guidance."""
        attrs = self.model.attributes
        if attrs is None:
            for value, flag in ((scale, "--attr-guidance"), (prompt_scale, "--attr-prompt-guidance")):
                if value is not None:
                    raise UsageError(f"{flag} needs a model trained with --attributes (e.g. fashion-attr)")
            return None
        scale = self.defaults.get("attr_guidance", guidance) if scale is None else scale
        check_scale(scale, "attr_guidance")
        prompt_scale = self.defaults.get("attr_prompt_guidance") if prompt_scale is None else prompt_scale
        if prompt_scale is not None:
            check_scale(prompt_scale, "attr_prompt_guidance")
        elif scale == guidance:
            return None  # plain guidance, fewer calls
        return float(scale), attrs.dim, None if prompt_scale is None else float(prompt_scale)

    def generate(self, prompt: str | Sequence[str] | None = None, n: int = 16, **options) -> np.ndarray:
        """uint8 images: ``[N, H, W]`` for grey models, ``[N, H, W, 3]`` for colour; ``options`` are
        :meth:`sample`'s, passed on as they are (one list of options, so the two cannot drift apart)."""
        return self.sample(prompt, n, **options).uint8()


def samplers() -> dict[str, str]:
    """Every sampler by name, with one line on what it does and costs.

    >>> "dpmpp-2m" in samplers()
    True
    """
    return {name: doc for name, (_, doc) in SAMPLERS.items()}


def schedules() -> list[str]:
    """The names of the noise schedules ``sample(schedule=...)`` takes."""
    return list(SCHEDULES)


def shipped_catalog() -> dict[str, dict]:
    """The models that ship inside the package: their default sampling settings and classes."""
    from diffusio.generative.checkpoint.models import load_config_of, shipped_models

    out = {}
    for name in shipped_models():
        config = load_config_of(name)
        out[name] = {"sampling": {k: v for k, v in config.get("sampling", {}).items() if k != "sigmas"},
                     "classes": config.get("conditioning", {}).get("class_names")}
    return out
