"""Redraws for clips: a clip whose object is not the prompted garment in every frame is drawn again.

The text-to-video network names the garment in most frames but loses it in some clips (a coat that
becomes a pullover halfway, an object that smears or vanishes): docs/benchmarks-video.md.  As the
image models do (``Generator.sample(redraws=N)``), generation reads every finished clip and
draws again, from new noise, the clips that came out wrong
(:mod:`diffusio.video.redraws`).  The **garment check** that reads them
has two small parts, trained on real clips and captions only and stored in the model's folder
(``garment_check.safetensors``):

* a classifier of the object in a frame, cut out around its centroid exactly as the garment judge
  cuts it (:func:`~diffusio.video.evaluation.object_crops`): the image models' noise-aware
  :class:`~diffusio.generative.conditioning.class_guide.NoisyClassifier`, trained on such crops of
  real training-split clips at the nearly clean noise levels of a check classifier;
* a caption reader (logistic regression on the MiniLM embedding, fitted on the training captions)
  that says which garment a prompt asks for.

A clip's score is its **weakest frame**: the probability of the prompted garment there.  A clip
under :data:`NAMED_AT` is drawn again, up to ``redraws`` times, keeping its best try.  The check is
not one of the judges: the garment judge is the shipped Fashion-MNIST image classifier, a network
trained separately on the still images.

>>> from diffusio.video.generator import VideoGenerator
>>> gen = VideoGenerator.load()                               # the shipped moving-fashion carries one
>>> check = load_garment_check(gen.path, gen.config)
>>> clips = np.zeros((2, 4, 32, 32, 1), dtype=np.uint8)       # empty frames: no garment to see
>>> scores = check.scores(clips, check.wishes(gen.embed(["a coat moving up", "a bag bouncing"])))
>>> scores.shape, bool((scores < NAMED_AT).all())
(torch.Size([2]), True)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from diffusio.errors import UsageError
from diffusio.generative.checkpoint import files as ckpt
from diffusio.generative.conditioning.class_guide import (CHECK_SIGMA_RANGE, ClassGuide, NoisyClassifier,
                                                          check_redraws, fit_caption_reader,
                                                          train_noisy_classifier)

CHECK_FILE = "garment_check.safetensors"
NAMED_AT = 0.5  # the weakest frame's probability of the prompted garment under which a clip is drawn again
DEFAULT_REDRAWS = 2  # the shipped model's: each redraw costs a whole clip (docs/benchmarks-video.md)


class GarmentCheck:
    """The crop classifier and caption reader of a video model (``guide``: a ClassGuide whose check
    classifier reads the crops), and the size the objects are cut out at."""

    def __init__(self, guide: ClassGuide, object_size: int = 16):
        self.guide, self.object_size = guide, int(object_size)

    @property
    def scores_on_real(self) -> dict:
        return self.guide.scores

    def wishes(self, cond: torch.Tensor) -> torch.Tensor:
        """``p(garment | caption)`` (N, K) from the captions' sentence embeddings; zero rows: unconditional."""
        return self.guide.wishes(cond)

    def scores(self, clips: np.ndarray, wishes: torch.Tensor) -> torch.Tensor:
        """Each uint8 clip's weakest frame: how surely the check sees a wished garment there (N,);
        1 for clips that wish for nothing."""
        from diffusio.video.evaluation import object_crops

        n, frames = clips.shape[:2]
        crops = torch.from_numpy(object_crops(clips, self.object_size))
        named = self.guide.named(crops, wishes.repeat_interleave(frames, dim=0))
        return named.reshape(n, frames).min(dim=1).values


def train_garment_check(*, clips: int = 4000, steps: int = 3000, batch_size: int = 128, width: int = 48,
                        object_size: int = 16, frames: int = 16, size: int = 32, seed: int = 0, bf16: str = "auto",
                        quiet: bool = True) -> GarmentCheck:
    """Train a garment check on ``clips`` real Moving Fashion-MNIST training clips (every frame's
    object crop, its garment as the label) and the training captions; ``check.scores_on_real``
    holds its accuracy on crops of real test clips and its reader's on held-out phrasings."""
    from diffusio.video.clips import moving_clips
    from diffusio.video.evaluation import object_crops
    from diffusio.video.generator import check_count

    for name, value in (("clips", clips), ("steps", steps), ("batch_size", batch_size), ("width", width)):
        check_count(name, value)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UsageError(f"seed must be a non-negative whole number, got {seed!r}")
    data = moving_clips(clips, frames=frames, size=size, object_size=object_size, split="train", seed=seed)
    crops = torch.from_numpy(object_crops(data.clips, object_size))
    labels = torch.from_numpy(np.repeat(data.classes[:, 0], frames))
    net = train_noisy_classifier(crops, labels, steps=steps, batch_size=batch_size, width=width, shift=1,
                                 sigma_data=0.5, seed=seed, bf16=bf16, quiet=quiet, classes=len(data.class_names),
                                 sigma_range=CHECK_SIGMA_RANGE, desc="garment check")
    names = list(data.class_names)
    weight, bias = garment_reader(names)
    check = GarmentCheck(ClassGuide(net, weight, bias, names, {}, net), object_size)
    check.guide.scores = _scores(check, frames, size, object_size, seed)
    return check


def garment_reader(names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """The caption reader's weights ``(K, dim)`` and bias ``(K,)``: which of the garments ``names`` a
    prompt asks for, fitted on the video models' training captions."""
    from diffusio.video.clips import all_captions, caption_classes

    texts, _ = all_captions("fashion-mnist")
    garments = np.array([names.index(name) for name in caption_classes("fashion-mnist")])
    return fit_caption_reader(names, captions=texts, labels=garments)


@torch.no_grad()
def _scores(check: GarmentCheck, frames: int, size: int, object_size: int, seed: int) -> dict:
    from diffusio.generative.conditioning.class_guide import CLEAN_SIGMA
    from diffusio.generative.conditioning.text import encode
    from diffusio.video.clips import all_captions, caption_classes, moving_clips
    from diffusio.video.evaluation import object_crops

    test = moving_clips(300, frames=frames, size=size, object_size=object_size, split="test", seed=seed + 1)
    crops = torch.from_numpy(object_crops(test.clips, object_size))
    guess = torch.cat([check.guide.check(part, torch.full((len(part),), CLEAN_SIGMA)).argmax(1)
                       for part in crops.split(512)]).numpy()  # in parts: one pass over every crop takes GBs
    truth = np.repeat(test.classes[:, 0], frames)
    wished = torch.nn.functional.one_hot(torch.from_numpy(test.classes[:, 0]), len(check.guide.class_names)).float()
    right = torch.cat([check.scores(test.clips[i:i + 32], wished[i:i + 32]) for i in range(0, len(wished), 32)])
    texts, _ = all_captions("fashion-mnist", phrases="held-out")
    picks = np.random.default_rng(seed).choice(len(texts), min(2000, len(texts)), replace=False)
    names = check.guide.class_names
    garments = np.array([names.index(name) for name in caption_classes("fashion-mnist", "held-out")])[picks]
    read = check.wishes(torch.from_numpy(encode([texts[i] for i in picks]))).argmax(1).numpy()
    return {"test_crop_accuracy": float((guess == truth).mean()),
            "test_clips_named": float((right >= NAMED_AT).float().mean()),
            "reader_held_out_accuracy": float((read == garments).mean())}


def attach_garment_check(model_dir: str | Path, *, clips: int = 4000, steps: int = 3000, redraws: int = DEFAULT_REDRAWS,
                         seed: int = 0, quiet: bool = True) -> GarmentCheck:
    """Train a garment check for the video model in ``model_dir`` (trained on Moving Fashion-MNIST,
    one object per clip) and write it there, with ``redraws`` as the model's default.

    >>> check = attach_garment_check("runs/video")                  # doctest: +SKIP
    >>> check.scores_on_real["test_crop_accuracy"]                  # doctest: +SKIP
    0.9
    """
    model_dir = Path(model_dir)
    config = ckpt.load_config(model_dir)
    data = config.get("data", {})
    if config.get("kind") != "video" or data.get("source") != "fashion-mnist" or data.get("objects", 1) != 1:
        raise UsageError(f"{model_dir} is not a video model trained on moving-fashion clips of one object; a garment "
                         "check reads Fashion-MNIST garments, one per clip")
    check_redraws(redraws)
    clip = config["clip"]
    check = train_garment_check(clips=clips, steps=steps, object_size=data.get("object_size", 16),
                                frames=clip["frames"], size=clip["size"], seed=seed, quiet=quiet)
    guide = check.guide
    ckpt.save_classifier_guide(model_dir, "garment_check", CHECK_FILE, guide.net, guide.reader_weight,
                               guide.reader_bias, {"class_names": guide.class_names, "scores": guide.scores,
                                                   "object_size": check.object_size, "clips": clips, "steps": steps,
                                                   "seed": seed}, sampling={"redraws": redraws})
    return check


def load_garment_check(model_dir: Path, config: dict) -> GarmentCheck | None:
    """The garment check a video model's folder holds, or None when it has none."""
    entry = config.get("garment_check")
    if entry is None:
        return None
    net, weight, bias, _ = ckpt.load_classifier_guide(model_dir, entry, NoisyClassifier, CHECK_FILE, "garment check",
                                                      "diffusio video garment-check MODEL")
    names = entry.get("class_names")
    if not isinstance(names, list) or net.config["classes"] != len(names) or weight.shape[0] != len(names):
        raise UsageError(f"{model_dir}: its garment check knows {net.config['classes']} classes but names {names!r}; "
                         "train it again with `diffusio video garment-check MODEL`")
    guide = ClassGuide(net, weight, bias, names, entry.get("scores", {}), net)
    return GarmentCheck(guide, entry.get("object_size", 16))

