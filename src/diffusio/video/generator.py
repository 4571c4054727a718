"""VideoGenerator: the friendly API of a trained text-to-video model.

It is the image stack with one more axis: EDM preconditioning, Karras sigmas, the project's
samplers and classifier-free guidance drive a :class:`~diffusio.video.net.SpaceTimeUNet`
conditioned on the MiniLM sentence embedding of the prompt.  Clips go in and come out as uint8
arrays (N, T, H, W, C); inside they are float (N, C, T, H, W) in [-1, 1].

>>> gen = VideoGenerator.load("moving-fashion")
>>> clip = gen.generate("a sneaker moving to the left", frames=4, steps=4, seed=0)
>>> clip.shape, clip.dtype
((1, 4, 32, 32, 1), dtype('uint8'))
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from diffusio.errors import UsageError
from diffusio.generative.checkpoint import files as ckpt
from diffusio.generative.checkpoint.models import resolve_model_dir
from diffusio.generative.conditioning.text import EMBED_DIM, encode
from diffusio.generative.core.denoiser import EDMDenoiser
from diffusio.generative.core.guidance import CFGDenoiser, check_scale
from diffusio.generative.core.samplers import PLAIN_SAMPLERS, get_sampler
from diffusio.generative.core.schedules import get_sigmas_karras
from diffusio.video.consistency import ConsistentDenoiser, check_strength
from diffusio.video.net import SpaceTimeUNet

KIND = "video"
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED = "moving-fashion"
MAX_FRAMES = 64  # attention over time and memory grow with the clip; longer clips: `extend`


def build_denoiser(config: dict) -> EDMDenoiser:
    """The EDM denoiser around the space-time UNet a config describes."""
    try:
        net = SpaceTimeUNet(**config["net"])
        return EDMDenoiser(net, sigma_data=config["preconditioning"]["sigma_data"])
    except (KeyError, TypeError) as err:
        raise UsageError(f"the video model's config cannot build its network ({err!r}); retrain it") from None


class VideoGenerator:
    """A trained video model: ``generate`` from text, and ``denoise``/``fill``/``extend`` clips.

    ``config`` holds the network, the clip shape (``frames``, ``size``, ``channels``), the data it was
    trained on and its sampling defaults (``steps``, ``guidance``, ``sampler``).
    """

    def __init__(self, denoiser: EDMDenoiser, config: dict, path: Path | None = None, motion_guide=None):
        self.denoiser, self.config, self.path = denoiser.eval(), config, path
        self.motion_guide = motion_guide  # a diffusio.video.motion.MotionGuide, or None
        self._garment_check = None  # loaded on the first redraw
        self._garment_guide = None  # loaded on the first garment-guided draw

    # ------------------------------------------------------------------ files
    @classmethod
    def load(cls, name_or_path: str | Path = SHIPPED) -> "VideoGenerator":
        """A shipped model by name (``moving-fashion``) or a folder written by ``diffusio video train``."""
        path = resolve_model_dir(name_or_path, WEIGHTS_DIR, "diffusio video train")
        config = ckpt.load_config(path)
        if config.get("kind") != KIND:
            raise UsageError(f"{path} holds a {config.get('kind', 'image')} model, not a video model; "
                             "give a folder written by `diffusio video train`")
        denoiser = build_denoiser(config)
        ckpt.load_state_into(denoiser.net, ckpt.load_tensors(path / "model.safetensors"), "net.", path)
        from diffusio.video.motion import load_motion_guide

        return cls(denoiser, config, path, load_motion_guide(path, config))

    def save(self, path: str | Path) -> Path:
        ckpt.save_model(path, self.config, {f"net.{k}": v for k, v in self.denoiser.net.state_dict().items()})
        if self.motion_guide is not None:
            from diffusio.video.motion import save_motion_guide

            save_motion_guide(self.motion_guide, path, self.config["motion_guide"]["scale"])
        from diffusio.video.garment_check import CHECK_FILE
        from diffusio.video.garment_guide import GUIDE_FILE

        for key, file in (("garment_check", CHECK_FILE), ("garment_guide", GUIDE_FILE)):
            if key in self.config and self.path is not None:  # the part's file goes with its config entry
                source, target = Path(self.path) / file, Path(path) / file
                if source.resolve() != target.resolve():
                    shutil.copyfile(source, target)
        return Path(path)

    # ------------------------------------------------------------------ shape
    @property
    def frames(self) -> int:
        return int(self.config["clip"]["frames"])

    @property
    def size(self) -> int:
        return int(self.config["clip"]["size"])

    @property
    def channels(self) -> int:
        return int(self.config["clip"]["channels"])

    def sampling(self, key: str):
        return self.config["sampling"][key]

    def embed(self, prompts: list[str | None]) -> torch.Tensor | None:
        """Sentence embeddings of the prompts; None (or all-None prompts): unconditional."""
        if all(p is None for p in prompts):
            return None
        rows = np.zeros((len(prompts), EMBED_DIM), dtype=np.float32)
        given = [i for i, p in enumerate(prompts) if p is not None]
        rows[given] = encode([prompts[i] for i in given])
        return torch.from_numpy(rows)

    def guided(self, guidance: float | None) -> torch.nn.Module:
        scale = check_scale(self.sampling("guidance") if guidance is None else guidance)
        return CFGDenoiser(self.denoiser, scale)

    def motion_guided(self, denoiser: torch.nn.Module, prompts: list[str | None],
                      scale: float | None) -> torch.nn.Module:
        """``denoiser`` steered toward the motion each of the rows' ``prompts`` names
        (:mod:`diffusio.video.motion`), at ``scale`` (default: the model's; 0: not steered).
        Unconditional rows (None) are never steered."""
        if scale is None:
            scale = self.config.get("motion_guide", {}).get("scale", 0.0)
        if isinstance(scale, bool):
            raise UsageError(f"motion_guidance must be a number (0: off), got {scale!r}")
        scale = check_scale(scale, "motion_guidance")
        if scale == 0 or all(p is None for p in prompts):
            return denoiser
        if self.motion_guide is None:
            raise UsageError(f"motion_guidance {scale:g} needs a motion guide, and {self.path or 'this model'} has none; "
                             "train one with `diffusio video motion-guide`, or pass 0")
        return self.motion_guide.guidance(denoiser, self.motion_guide.read_prompts(prompts), scale)

    def garment_guided(self, denoiser: torch.nn.Module, cond: torch.Tensor | None,
                       scale: float | None) -> torch.nn.Module:
        """``denoiser`` steered toward the garment each caption names, in every frame
        (:mod:`diffusio.video.garment_guide`), at ``scale`` (default: the model's; 0: not steered).
        Unconditional rows are never steered."""
        entry = self.config.get("garment_guide")
        if scale is None:
            scale = 0.0 if entry is None else entry.get("scale", 0.0)
        if isinstance(scale, bool):
            raise UsageError(f"garment_guidance must be a number (0: off), got {scale!r}")
        scale = check_scale(scale, "garment_guidance")
        if scale == 0 or cond is None:
            return denoiser
        if entry is None or self.path is None:
            raise UsageError(f"garment_guidance {scale:g} needs a garment guide, and {self.path or 'this model'} has "
                             "none; train one with `diffusio video garment-guide MODEL`, or pass 0")
        from diffusio.video.garment_guide import garment_guidance, load_garment_guide

        if self._garment_guide is None:
            self._garment_guide = load_garment_guide(self.path, self.config)
        return garment_guidance(denoiser, self._garment_guide, self._garment_guide.wishes(cond), scale)

    def consistency(self, strength: float | None, *, denoising: bool = False) -> float:
        """How far estimates are pulled toward one look of the object (:mod:`diffusio.video.consistency`):
        ``strength`` checked, or the model's ``sampling.consistency`` (0 when it has none); for
        ``denoising``, its ``sampling.denoise_consistency`` where it has one (a noisy clip already
        shows the object's look, and a full pull to one whole-pixel sprite costs detail there)."""
        if strength is None:
            config = self.config["sampling"]
            strength = config.get("denoise_consistency", config.get("consistency", 0.0)) if denoising \
                else config.get("consistency", 0.0)
        strength = check_strength(strength)
        if strength and self.config.get("data", {}).get("objects", 1) > 1:
            warnings.warn(f"consistency {strength:g} aligns one object per clip, and this model was trained on clips "
                          "of several: their looks will be mixed; pass consistency 0", stacklevel=3)
        return strength

    def sigmas(self, steps: int | None, sigma_max: float | None = None) -> torch.Tensor:
        steps = self.sampling("steps") if steps is None else steps
        if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 1:
            raise UsageError(f"steps must be a positive whole number, got {steps!r}")
        return get_sigmas_karras(int(steps), self.denoiser.sigma_min, sigma_max or self.denoiser.sigma_max)

    # --------------------------------------------------------------- generate
    @torch.no_grad()
    def generate(self, prompt: str | list[str] | None = None, *, n: int = 1, frames: int | None = None,
                 steps: int | None = None, guidance: float | None = None, sampler: str | None = None,
                 motion_guidance: float | None = None, garment_guidance: float | None = None,
                 redraws: int | None = None, nudges=None, motion_check: bool | None = None,
                 consistency: float | None = None, seed: int = 0, progress: bool = False) -> np.ndarray:
        """``n`` clips per prompt (a list: one group per prompt; None: unconditional), ``frames``
        long (default: the training length), as uint8 (N, T, H, W, C).  ``sampler``: one of
        :data:`~diffusio.generative.core.samplers.PLAIN_SAMPLERS` (default: the model's, ``ddpm`` for
        the shipped model); ``ddpm``, which adds fresh noise at every step, keeps the object one
        garment through the clip more often, and lets motion guidance steer later steps
        (docs/benchmarks-video.md).  ``motion_guidance``: how
        hard the motion guide steers toward the motion the prompt names (default: the model's; 0: off;
        :meth:`motion_guided`).  ``garment_guidance``: how hard the garment guide holds the prompted
        garment in every frame (default: the model's; 0: off; :meth:`garment_guided`).  ``redraws``:
        how many times to draw again (new noise, same prompt) a clip whose object is not the prompted garment in every frame (:mod:`diffusio.video.garment_check`;
        default: the model's, else 0 = never); clips still wrong after the last are kept with a warning.
        ``nudges``: the garment guidance of the first redraw rounds, e.g. ``(3, 3)``: round r draws with
        ``garment_guidance=nudges[r - 1]``, so only the clips that lost their garment are steered
        (default: the model's ``nudges``, else none).  ``motion_check``: redraws also draw again a clip
        the motion guide's classifier does not see moving as the prompt says (:mod:`diffusio.video.redraws`;
        default: the model's, else off).  ``consistency``: how far every denoising step's
        estimate is pulled toward one look of the object in every frame, from 0 (off) to 1
        (:mod:`diffusio.video.consistency`; default: the model's, else 0).
        The same seed gives the same bytes."""
        sampler = self.sampling("sampler") if sampler is None else sampler
        if sampler not in PLAIN_SAMPLERS:
            raise UsageError(f"sampler must be one of {', '.join(PLAIN_SAMPLERS)}; got {sampler!r}")
        prompts = prompt if isinstance(prompt, list) else [prompt]
        frames = self.frames if frames is None else frames
        check_count("n", n)
        check_count("frames", frames, MAX_FRAMES)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2 ** 32:
            raise UsageError(f"seed must be an integer in [0, {2 ** 32 - 1}], got {seed!r}")
        from diffusio.generative.conditioning.class_guide import MAX_REDRAWS, check_nudges, check_redraws
        from diffusio.video.redraws import redraw

        redraws = check_redraws(self.config["sampling"].get("redraws", 0) if redraws is None else redraws)
        nudges = (check_nudges(nudges, redraws) if nudges is not None
                  else check_nudges(self.config["sampling"].get("nudges"), MAX_REDRAWS)[:redraws])
        consistency = self.consistency(consistency)  # checked before the text encoder loads
        row_prompts = [p for p in prompts for _ in range(n)]
        cond = self.embed(row_prompts)
        checks = self.redraw_checks(redraws, motion_check, cond, row_prompts)
        if nudges and cond is not None and "garment_guide" not in self.config:  # refused before any clip is drawn
            raise UsageError(f"nudges need a garment guide, and {self.path or 'this model'} has none; train one with "
                             "`diffusio video garment-guide MODEL`, or pass none")
        sigmas = self.sigmas(steps)
        denoiser = self.guided(guidance)
        bar = tqdm(total=len(sigmas) - 1, desc="generate", unit="step", disable=not progress)

        def draw(rows: torch.Tensor, gen: torch.Generator, garment: float | None = garment_guidance) -> np.ndarray:
            part = None if cond is None else cond[rows]
            noise = torch.randn((len(rows), self.channels, frames, self.size, self.size), generator=gen)
            motion = self.motion_guided(denoiser, [row_prompts[i] for i in rows.tolist()], motion_guidance)
            steered = self.garment_guided(motion, part, garment)
            if consistency:
                steered = ConsistentDenoiser(steered, consistency)
            x = get_sampler(sampler)(steered, noise * sigmas[0], sigmas, cond=part, generator=gen,
                                     callback=lambda info: bar.update(1))
            return to_pixels(x)

        rounds = iter(range(redraws))

        def again(rows: torch.Tensor, round_seed: int) -> np.ndarray:
            bar.total += len(sigmas) - 1
            bar.refresh()
            r = next(rounds)  # keep_best_of_redraws draws its rounds in order
            garment = nudges[r] if r < len(nudges) else garment_guidance
            return draw(rows, torch.Generator().manual_seed(round_seed), garment)

        clips = draw(torch.arange(len(prompts) * n), torch.Generator().manual_seed(int(seed)))
        if checks:
            clips, missed = redraw(clips, checks, redraws, again, int(seed))
            if missed:
                warnings.warn(f"{missed} of {len(clips)} clips still do not {checks.what()} after {redraws} redraws; "
                              "pass more redraws, or another seed", stacklevel=3)
        bar.close()
        return clips

    def redraw_checks(self, redraws: int, motion_check: bool | None, cond: torch.Tensor | None,
                      prompts: list[str | None]):
        """The checks that decide which of the rows' clips are drawn again (:mod:`diffusio.video.redraws`):
        the garment check when the model has one, and the motion check when ``motion_check`` (default:
        the model's) asks for it; none when nothing is redrawn or every row is unconditional."""
        from diffusio.video.redraws import ClipChecks

        if motion_check is None:
            motion_check = bool(self.config["sampling"].get("motion_check", False))
        if not isinstance(motion_check, bool):
            raise UsageError(f"motion_check must be True or False, got {motion_check!r}")
        if motion_check and self.motion_guide is None:
            raise UsageError(f"motion_check needs a motion guide, and {self.path or 'this model'} has none; train one "
                             "with `diffusio video motion-guide`, or turn the motion check off")
        if not redraws or cond is None:
            return ClipChecks()
        # the garment check when the model has one; without it and without the motion check, refused there
        garment = self.garment_check(redraws) if "garment_check" in self.config or not motion_check else None
        motion = self.motion_guide if motion_check else None
        return ClipChecks(garment, None if garment is None else garment.wishes(cond),
                          motion, None if motion is None else motion.read_prompts(prompts))

    def garment_check(self, redraws: int):
        """The check that decides which clips are drawn again (:mod:`diffusio.video.garment_check`)."""
        if self._garment_check is None and self.path is not None:
            from diffusio.video.garment_check import load_garment_check

            self._garment_check = load_garment_check(self.path, self.config)
        if self._garment_check is None:
            raise UsageError(f"redraws {redraws} needs a garment check, and {self.path or 'this model'} has none; "
                             "train one with `diffusio video garment-check MODEL`, or pass 0")
        return self._garment_check

    # ---------------------------------------------------------------- editing
    def denoise(self, clip: np.ndarray, sigma: float | None = None, **options) -> np.ndarray:
        from diffusio.video.editing import denoise

        return denoise(self, clip, sigma, **options)

    def fill(self, clip: np.ndarray, missing, **options) -> np.ndarray:
        from diffusio.video.editing import fill

        return fill(self, clip, missing, **options)

    def extend(self, clip: np.ndarray, frames: int, **options) -> np.ndarray:
        from diffusio.video.editing import extend

        return extend(self, clip, frames, **options)


def check_count(name: str, value, most: int | None = None) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise UsageError(f"{name} must be a positive whole number, got {value!r}")
    if most is not None and value > most:
        raise UsageError(f"{name} must be at most {most}, got {value}; for longer clips generate and then `extend`")
    return int(value)


def to_tensor(clips: np.ndarray) -> torch.Tensor:
    """uint8 clips (N, T, H, W, C) -> float (N, C, T, H, W) in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(clips)).float().div(127.5).sub(1).permute(0, 4, 1, 2, 3)


def to_pixels(x: torch.Tensor) -> np.ndarray:
    """float (N, C, T, H, W) in [-1, 1] -> uint8 (N, T, H, W, C)."""
    return x.permute(0, 2, 3, 4, 1).add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).numpy()
