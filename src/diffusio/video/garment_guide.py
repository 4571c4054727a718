"""Garment guidance: classifier guidance that holds the prompted garment in every frame of a clip.

The text-to-video network picks the garment from the caption but loses it in some clips: a coat
that becomes a pullover halfway (one class throughout in 0.77-0.79 of clips, real clips 0.99;
docs/benchmarks-video.md).  Redraws (:mod:`.garment_check`) can only throw such clips away; this
steers the sampler instead, as :mod:`.motion` steers the motion.  Two small parts, trained on real
data only and stored in the model's folder (``garment_guide.safetensors``):

* a noise-aware classifier of single frames ``p(garment | frame_sigma, sigma)`` (the image models'
  :class:`~diffusio.generative.conditioning.class_guide.NoisyClassifier`), trained on still frames
  of the training-split garments at random places, at noise levels 0.02 to 80;
* a caption reader: which garment a prompt names (as the garment check's).

:class:`ClipGarments` reads a clip as *one* garment throughout: its logit for garment ``k`` is
``sum_t log p(k | frame t)``.  Under :class:`~diffusio.generative.core.guidance.ClassifierGuidance`
(which takes the softmax of these logits) the sampler climbs ``log p(every frame is k) - log
sum_j p(every frame is j)`` for the garment ``k`` the prompt names: every frame is pushed toward it,
and the clip away from being some other garment throughout.

>>> net = NoisyClassifier(width=8)
>>> ClipGarments(net)(torch.zeros(2, 1, 4, 32, 32), torch.ones(2)).shape    # (clips, garments)
torch.Size([2, 10])
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from diffusio.errors import UsageError
from diffusio.generative.checkpoint import files as ckpt
from diffusio.generative.conditioning.class_guide import (SIGMA_RANGE, ClassGuide, NoisyClassifier,
                                                          train_noisy_classifier)
from diffusio.generative.core.guidance import ClassifierGuidance, check_scale
from diffusio.generative.data.datasets import FASHION_CLASSES

GUIDE_FILE = "garment_guide.safetensors"
# off unless asked: on the shipped model neither guidance 3 at every step nor nudges 3, 3 beat the
# redraws alone on every score (docs/benchmarks-video.md, "Garment guidance")
DEFAULT_SCALE = 0.0
TEST_SIGMAS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0)
SCORED = 300  # real test clips (of 16 frames) the classifier's scores are measured on
STILLS = 60000  # still frames it learns from: every Fashion-MNIST training garment about once


class ClipGarments(nn.Module):
    """Clip-level garment logits ``(N, K)`` from a classifier of frames: the sum over the frames of
    ``log p(k | frame, sigma)``, for clips ``(N, C, T, H, W)`` at noise levels ``sigma`` (N,)."""

    def __init__(self, net: NoisyClassifier):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        n, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(n * t, c, h, w)
        levels = torch.as_tensor(sigma, dtype=x.dtype).reshape(-1).expand(n).repeat_interleave(t)
        return torch.log_softmax(self.net(frames, levels).float(), dim=1).reshape(n, t, -1).sum(1)


def garment_guidance(denoiser: nn.Module, guide: ClassGuide, wishes: torch.Tensor, scale: float) -> ClassifierGuidance:
    """``denoiser`` steered toward one wished garment in every frame (``wishes``: (N, K) from
    ``guide.wishes``; zero rows are not steered), at ``scale``."""
    return ClassifierGuidance(denoiser, ClipGarments(guide.net.eval()), wishes, scale)


def train_garment_guide(*, stills: int | None = None, steps: int = 4000, batch_size: int = 128, width: int = 32,
                        object_size: int = 16, size: int = 32, seed: int = 0, quiet: bool = True) -> ClassGuide:
    """Train the frame classifier on ``stills`` real still frames (Fashion-MNIST training garments at
    random places; default :data:`STILLS`) at every noise level, and the caption reader on the
    training captions; the test scores (frames of real test clips, per noise level; held-out
    phrasings read right) are in ``guide.scores``."""
    from diffusio.video.clips import still_frames
    from diffusio.video.garment_check import garment_reader
    from diffusio.video.generator import check_count, to_tensor

    stills = STILLS if stills is None else stills
    for name, value in (("stills", stills), ("steps", steps), ("batch_size", batch_size), ("width", width)):
        check_count(name, value)
    frames, _, labels = still_frames(stills, size=size, object_size=object_size, seed=seed)
    names = list(FASHION_CLASSES)
    net = train_noisy_classifier(to_tensor(frames)[:, :, 0], torch.from_numpy(labels.astype(np.int64)), steps=steps,
                                 batch_size=batch_size, width=width, shift=0, sigma_data=0.5, seed=seed, bf16="off",
                                 quiet=quiet, classes=len(names), sigma_range=SIGMA_RANGE, desc="garment guide")
    weight, bias = garment_reader(names)
    guide = ClassGuide(net, weight, bias, names)
    guide.scores = _scores(guide, size, object_size, seed)
    return guide


@torch.no_grad()
def _scores(guide: ClassGuide, size: int, object_size: int, seed: int) -> dict:
    from diffusio.generative.conditioning.text import encode
    from diffusio.video.clips import all_captions, caption_classes, moving_clips
    from diffusio.video.generator import to_tensor

    test = moving_clips(SCORED, size=size, object_size=object_size, split="test", seed=seed + 7)
    x0 = to_tensor(test.clips).transpose(1, 2).flatten(0, 1)
    truth = torch.from_numpy(np.repeat(test.classes[:, 0], test.clips.shape[1]))
    gen = torch.Generator().manual_seed(seed + 1)
    by_sigma = {}
    for s in TEST_SIGMAS:
        x = x0 + s * torch.randn(x0.shape, generator=gen)
        guess = torch.cat([guide.net(part, torch.full((len(part),), s)).argmax(1) for part in x.split(1024)])
        by_sigma[str(s)] = float((guess == truth).float().mean())
    texts, _ = all_captions("fashion-mnist", phrases="held-out")
    picks = np.random.default_rng(seed).choice(len(texts), min(2000, len(texts)), replace=False)
    wanted = np.array([guide.class_names.index(c) for c in caption_classes("fashion-mnist", "held-out")])[picks]
    read = guide.wishes(torch.from_numpy(encode([texts[i] for i in picks]))).argmax(1).numpy()
    return {"classifier_test_accuracy_by_sigma": by_sigma, "reader_held_out_accuracy": float((read == wanted).mean())}


def save_garment_guide(guide: ClassGuide, model_dir: str | Path, scale: float) -> Path:
    """Write the guide into a video model's folder and name it, with its default ``scale``, in its config."""
    return ckpt.save_classifier_guide(model_dir, "garment_guide", GUIDE_FILE, guide.net, guide.reader_weight,
                                      guide.reader_bias, {"scale": check_scale(scale, "scale"),
                                                          "class_names": guide.class_names, "scores": guide.scores})


def load_garment_guide(model_dir: Path, config: dict) -> ClassGuide | None:
    """The garment guide a video model's folder holds, or None when it has none."""
    entry = config.get("garment_guide")
    if entry is None:
        return None
    net, weight, bias, _ = ckpt.load_classifier_guide(model_dir, entry, NoisyClassifier, GUIDE_FILE, "garment guide",
                                                      "diffusio video garment-guide MODEL")
    names = entry.get("class_names")
    if not isinstance(names, list) or net.config["classes"] != len(names) or weight.shape[0] != len(names):
        raise UsageError(f"{model_dir}: its garment guide knows {net.config['classes']} classes but names {names!r}; "
                         "train it again with `diffusio video garment-guide MODEL`")
    return ClassGuide(net.eval().requires_grad_(False), weight, bias, names, entry.get("scores", {}))


def attach_garment_guide(model_dir: str | Path, *, steps: int = 4000, scale: float = DEFAULT_SCALE, seed: int = 0,
                         quiet: bool = True) -> ClassGuide:
    """Train a garment guide for the video model in ``model_dir`` (a run folder trained on
    moving-fashion clips) and write it there, steering at ``scale`` by default.

    >>> guide = attach_garment_guide("runs/video", steps=4000)          # doctest: +SKIP
    >>> guide.scores["classifier_test_accuracy_by_sigma"]["1.0"]              # doctest: +SKIP
    0.8
    """
    from diffusio.generative.checkpoint.models import check_not_shipped
    from diffusio.video.generator import WEIGHTS_DIR

    check_not_shipped(model_dir, "garment guide", WEIGHTS_DIR, "diffusio video train")
    model_dir = Path(model_dir)
    config = ckpt.load_config(model_dir)
    data = config.get("data", {})
    if config.get("kind") != "video" or data.get("source") != "fashion-mnist" or config["clip"].get("channels") != 1:
        raise UsageError(f"{model_dir} is not a video model trained on moving-fashion clips; a garment guide reads "
                         "Fashion-MNIST garments")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UsageError(f"seed must be a non-negative whole number, got {seed!r}")
    if isinstance(scale, bool):
        raise UsageError(f"scale must be a number, got {scale!r}")
    check_scale(scale, "scale")
    guide = train_garment_guide(steps=steps, object_size=int(data.get("object_size", 16)),
                                size=int(config["clip"]["size"]), seed=seed, quiet=quiet)
    save_garment_guide(guide, model_dir, scale)
    return guide
