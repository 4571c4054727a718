"""Motion guidance: classifier guidance (Dhariwal & Nichol 2021) toward the motion a caption names.

The text-to-video model picks the garment from the caption, but the motion mostly follows the
starting noise: MiniLM's sentence embedding hardly tells "left" from "right" (cosine 0.97), and
training has not yet taught the network to read it (docs/benchmarks-video.md).  Two small parts,
trained on real clips and captions only, steer the sampler instead:

* :class:`MotionNet`, a noise-aware classifier ``p(motion | x_sigma, sigma)`` of noisy clips (3-D
  convolutions over the EDM-scaled clip and a log-sigma plane), trained on Moving Fashion-MNIST
  at noise levels from 0.02 to 80;
* a **caption reader**: two logistic regressions on the MiniLM sentence embedding and the max of
  MiniLM's fifth-layer word states (:func:`~diffusio.generative.conditioning.text.encode_words`:
  the middle layers still tell "left" from "right"), one for which of the six motions a caption
  names (fitted on the training captions) and one for whether it names one at all (``none``:
  still-image captions, and two objects, whose motions one clip-level label cannot hold); together
  ``r = p(motion or none | caption)``.  Two readers, because folding ``none`` into the multinomial
  one costs it held-out phrasings (0.838 against 0.875 read right, on the sentence embedding).

:meth:`MotionGuide.guidance` wraps any denoiser (the CFG one, usually) in classifier guidance
(:class:`~diffusio.generative.core.guidance.ClassifierGuidance`): it adds the gradient of the
log-probability of the motions the caption names, as the score of ``p(motion | x)``:

``D'(x, sigma) = D(x, sigma) + w (1 - r_none) sigma^2 grad_x log sum_m r_m p(m | x, sigma)``

so a caption the reader is unsure of ("a bag bouncing": sideways or up and down) is steered toward
either, and one that names no motion is not steered at all.  The sampler does not change.

>>> guide = MotionGuide(MotionNet(), torch.zeros(len(MOTIONS) + 1, 768), torch.zeros(len(MOTIONS) + 1), word_depth=5)
>>> guide.read_prompts(["a coat moving left", None]).shape  # p(motion or none | caption), one row per caption
torch.Size([2, 7])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from diffusio.errors import UsageError
from diffusio.generative.checkpoint import files as ckpt
from diffusio.generative.conditioning.text import EMBED_DIM, LAYERS, WORD_DEPTH, encode, encode_words, is_depth
from diffusio.generative.core.denoiser import expand_rows
from diffusio.generative.core.guidance import ClassifierGuidance, check_scale
from diffusio.video.clips import MOTIONS, all_captions, moving_clips, still_frames
from diffusio.video.generator import check_count, to_tensor

GUIDE_FILE = "motion_guide.safetensors"
SIGMA_RANGE = (0.02, 80.0)  # training noise levels, log-uniform: the sampler's whole range that carries motion
DEFAULT_SCALE = 6.0  # measured on the shipped model: docs/benchmarks-video.md, "Motion guidance"
SCORED = 600  # test clips the classifier's scores are measured on
READER_C = 10.0  # the readers' inverse regularisation (bench/video_text_probe.py: C = 10 reads held-out phrasings best)
MOVES_AT = 0.5  # a finished clip's agreement with its caption under which a motion check draws it again


class MotionNet(nn.Module):
    """``p(motion | x_sigma, sigma)``: conv3d 24-48-96 (GroupNorm, SiLU, spatial pooling), fc 128, 6 motions."""

    def __init__(self, channels: int = 1, width: int = 24, motions: int = len(MOTIONS), sigma_data: float = 0.5):
        super().__init__()
        self.config = {"channels": channels, "width": width, "motions": motions, "sigma_data": sigma_data}
        chans = [channels + 1, width, 2 * width, 4 * width]  # +1: the log-sigma plane
        self.convs = nn.ModuleList([nn.Conv3d(a, b, 3, padding=1) for a, b in zip(chans[:-1], chans[1:])])
        self.norms = nn.ModuleList([nn.GroupNorm(4, b) for b in chans[1:]])
        self.fc = nn.Linear(4 * width * 4 * 2 * 2, 128)
        self.head = nn.Linear(128, motions)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        sigma = sigma.to(x.dtype).reshape(-1, 1, 1, 1, 1).expand(x.shape[0], 1, 1, 1, 1)
        h = x / (sigma ** 2 + self.config["sigma_data"] ** 2).sqrt()  # EDM's c_in: unit variance at every level
        h = torch.cat([h, (sigma.log() / 4).expand(-1, 1, *x.shape[2:])], dim=1)
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            h = F.silu(norm(conv(h)))
            h = F.max_pool3d(h, (1, 2, 2)) if i < 2 else F.adaptive_avg_pool3d(h, (4, 2, 2))
        return self.head(F.silu(self.fc(h.flatten(1))))


@dataclass
class MotionGuide:
    """The noise-aware motion classifier and the caption reader: weights ``(7, dim)`` and bias ``(7,)``,
    the six motions' logits and then the logit of ``none`` (naming no motion), on a caption's
    :func:`caption_features` (``word_depth``: the MiniLM layer whose word states it reads beside the
    sentence embedding; None: the sentence embedding alone, as guides saved before 2026-12-08)."""

    net: MotionNet
    reader_weight: torch.Tensor
    reader_bias: torch.Tensor
    scores: dict = field(default_factory=dict)
    word_depth: int | None = None

    def read(self, features: torch.Tensor) -> torch.Tensor:
        """``p(motion or none | caption)`` (N, 7) from the captions' :func:`caption_features` (N, dim);
        motions in :data:`MOTIONS` order."""
        logits = features.float() @ self.reader_weight.T + self.reader_bias
        none = torch.sigmoid(logits[:, -1:])
        return torch.cat([(1 - none) * torch.softmax(logits[:, :-1], dim=1), none], dim=1)

    def read_prompts(self, prompts: list[str | None]) -> torch.Tensor:
        """:meth:`read` of the prompts; a None prompt (an unconditional row) names no motion."""
        wishes = torch.eye(len(MOTIONS) + 1)[[-1] * len(prompts)]
        given = [i for i, p in enumerate(prompts) if p is not None]
        if given:
            wishes[given] = self.read(caption_features([prompts[i] for i in given], self.word_depth))
        return wishes

    def guidance(self, denoiser: nn.Module, wishes: torch.Tensor, scale: float) -> ClassifierGuidance:
        """``denoiser`` steered toward the motions ``wishes`` (N, 7, from :meth:`read`) name, at ``scale``:
        the six motion shares sum to ``1 - p(none)``, so a caption naming no motion is not steered."""
        return ClassifierGuidance(denoiser, self.net.eval(), wishes[:, :-1], scale)

    @torch.no_grad()
    def agreement(self, clips: np.ndarray, wishes: torch.Tensor) -> torch.Tensor:
        """How surely the classifier sees, in each finished uint8 clip (N, T, H, W, C), a motion its
        caption names (``wishes``: N x 7 from :meth:`read`): ``p(none) + sum_m r_m p(m | clip)`` (N,),
        1 for a caption naming no motion.  The motion check of redraws (:mod:`diffusio.video.redraws`)."""
        x = to_tensor(clips)
        seen = torch.softmax(self.net.eval()(x, torch.full((len(x),), SIGMA_RANGE[0])), dim=1)
        return wishes[:, -1] + (wishes[:, :-1] * seen).sum(dim=1)


def train_motion_guide(*, steps: int = 1200, batch_size: int = 32, frames: int = 16, size: int = 32,
                       object_size: int = 16, source: str = "fashion-mnist", sigma_data: float = 0.5, seed: int = 0,
                       quiet: bool = True) -> MotionGuide:
    """Train both parts on real clips (fresh training-split clips every step) and captions; their test
    scores are in ``guide.scores`` (classifier accuracy per noise level, reader accuracy on the
    held-out phrasings)."""
    torch.manual_seed(seed)
    net = MotionNet(sigma_data=sigma_data)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    lo, hi = math.log(SIGMA_RANGE[0]), math.log(SIGMA_RANGE[1])
    for step in tqdm(range(steps), desc="motion classifier", disable=quiet):
        data = moving_clips(batch_size, frames=frames, size=size, object_size=object_size, source=source,
                            seed=20_000_000 + 1_000_000 * seed + step)
        x0 = to_tensor(data.clips)
        sigma = torch.exp(torch.rand(batch_size, generator=gen) * (hi - lo) + lo)
        x = x0 + expand_rows(sigma, x0) * torch.randn(x0.shape, generator=gen)
        loss = F.cross_entropy(net.train()(x, sigma), torch.tensor([MOTIONS.index(m[0]) for m in data.motions]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    weight, bias, none_test = fit_caption_reader(source, size, object_size, seed, WORD_DEPTH)
    guide = MotionGuide(net, weight, bias, word_depth=WORD_DEPTH)
    guide.scores = _scores(guide, frames, size, object_size, source, none_test, seed)
    return guide


def caption_features(prompts: list[str], word_depth: int | None = WORD_DEPTH) -> torch.Tensor:
    """What the caption reader reads (N, 384 or 768): the MiniLM sentence embedding, and beside it the
    max of the word states after ``word_depth`` layers (None: the sentence embedding alone).  The
    word states read left-out phrasings 0.935 against 0.873 (docs/benchmarks-video.md)."""
    parts = [encode(prompts)] + ([] if word_depth is None else [encode_words(prompts, word_depth)])
    return torch.from_numpy(np.concatenate(parts, axis=1))


def fit_caption_reader(source: str = "fashion-mnist", size: int = 32, object_size: int = 16, seed: int = 0,
                       word_depth: int | None = WORD_DEPTH) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """The reader's weights ``(7, dim)`` and bias ``(7,)`` (:class:`MotionGuide`) on
    :func:`caption_features` with ``word_depth``, and captions naming no motion kept out of its fit
    (to score it)."""
    from sklearn.linear_model import LogisticRegression

    texts, motions = all_captions(source)
    _, stills, _ = still_frames(1500, size=size, object_size=object_size, source=source, seed=seed)
    pairs = moving_clips(1500, frames=2, size=size, object_size=object_size, objects=2, source=source, seed=seed).captions
    none = sorted(set(stills)) + pairs[:1000]
    named, unnamed = caption_features(texts, word_depth).numpy(), caption_features(none, word_depth).numpy()
    which = LogisticRegression(C=READER_C, max_iter=3000).fit(named, [MOTIONS.index(m) for m in motions])
    anything = LogisticRegression(C=READER_C, max_iter=3000).fit(
        np.concatenate([named, unnamed]), [0] * len(named) + [1] * len(unnamed))
    weight = np.concatenate([which.coef_, anything.coef_])
    bias = np.concatenate([which.intercept_, anything.intercept_])
    return torch.from_numpy(weight).float(), torch.from_numpy(bias).float(), pairs[1000:]


@torch.no_grad()
def _scores(guide: MotionGuide, frames, size, object_size, source, none_texts, seed) -> dict:
    test = moving_clips(SCORED, frames=frames, size=size, object_size=object_size, source=source, split="test",
                        seed=seed + 5)
    x0, truth = to_tensor(test.clips), torch.tensor([MOTIONS.index(m[0]) for m in test.motions])
    gen = torch.Generator().manual_seed(seed + 1)
    by_sigma = {}
    for s in (0.5, 2.0, 5.0, 10.0, 20.0):
        x = x0 + s * torch.randn(x0.shape, generator=gen)
        by_sigma[str(s)] = float((guide.net(x, torch.full((len(x),), s)).argmax(1) == truth).float().mean())
    return {"classifier_test_accuracy_by_sigma": by_sigma, **reader_scores(guide, source, none_texts)}


def reader_scores(guide: MotionGuide, source: str, none_texts: list[str]) -> dict:
    """How often the caption reader names the motion of held-out phrasings, and ``none`` for ``none_texts``."""
    texts, motions = all_captions(source, phrases="held-out")
    read = guide.read_prompts(texts).argmax(1).numpy()
    nothing = guide.read_prompts(none_texts).argmax(1).numpy()
    return {"reader_held_out_accuracy": float(np.mean(read == np.array([MOTIONS.index(m) for m in motions]))),
            "reader_none_accuracy": float(np.mean(nothing == len(MOTIONS)))}


def save_motion_guide(guide: MotionGuide, model_dir: str | Path, scale: float) -> Path:
    """Write the guide into a video model's folder (``motion_guide.safetensors``) and name it, with its
    default ``scale``, in the folder's config."""
    return ckpt.save_classifier_guide(model_dir, "motion_guide", GUIDE_FILE, guide.net, guide.reader_weight,
                                      guide.reader_bias, {"scale": float(scale), "motions": list(MOTIONS),
                                                          "scores": guide.scores, "word_depth": guide.word_depth})


def load_motion_guide(model_dir: Path, config: dict) -> MotionGuide | None:
    """The guide a model's folder holds, or None when it has none."""
    entry = config.get("motion_guide")
    if entry is None:
        return None
    net, weight, bias, _ = ckpt.load_classifier_guide(model_dir, entry, MotionNet, GUIDE_FILE, "motion guide",
                                                      "diffusio video motion-guide")
    depth = entry.get("word_depth")  # absent in guides saved before the reader read word states
    if depth is not None and not is_depth(depth):
        raise UsageError(f"{model_dir}: its motion guide's word_depth is {depth!r}, not a MiniLM layer from 1 to "
                         f"{LAYERS}; train it again with `diffusio video motion-guide`")
    dim = EMBED_DIM * (1 if depth is None else 2)
    if weight.shape != (len(MOTIONS) + 1, dim) or bias.shape != (len(MOTIONS) + 1,):
        raise UsageError(f"{model_dir}: its motion guide's caption reader has shape {tuple(weight.shape)}; "
                         f"expected ({len(MOTIONS) + 1}, {dim}); train it again with `diffusio video motion-guide`")
    return MotionGuide(net, weight, bias, entry.get("scores", {}), depth)


def attach_motion_guide(model_dir: str | Path, *, steps: int = 1200, scale: float = DEFAULT_SCALE, seed: int = 0,
                        quiet: bool = True) -> MotionGuide:
    """Train a motion guide for the video model in ``model_dir`` (a run folder trained on built-in
    moving clips, whose motions are known) and write it there, steering at ``scale`` by default.

    >>> guide = attach_motion_guide("runs/video", steps=1200)      # doctest: +SKIP
    >>> guide.scores["reader_held_out_accuracy"]                    # doctest: +SKIP
    0.838
    """
    from diffusio.generative.checkpoint.models import check_not_shipped
    from diffusio.video.generator import WEIGHTS_DIR
    from diffusio.video.training import BUILTIN

    check_not_shipped(model_dir, "motion guide", WEIGHTS_DIR, "diffusio video train")
    model_dir = Path(model_dir)
    config = ckpt.load_config(model_dir)
    if config.get("kind") != "video":
        raise UsageError(f"{model_dir} holds a {config.get('kind', 'image')} model, not a video model")
    check_count("steps", steps)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UsageError(f"seed must be a non-negative whole number, got {seed!r}")
    if isinstance(scale, bool):
        raise UsageError(f"scale must be a number, got {scale!r}")
    check_scale(scale, "scale")
    data = config.get("data", {})
    if data.get("source") not in BUILTIN.values() or config["clip"].get("channels") != 1:
        raise UsageError(f"{model_dir} was trained on {data.get('name', 'clips of its own')!r}; a motion guide learns "
                         f"the motions from clips whose motion is known: train the model on {' or '.join(BUILTIN)}")
    guide = train_motion_guide(steps=steps, frames=int(config["clip"]["frames"]), size=int(config["clip"]["size"]),
                               object_size=int(data["object_size"]), source=data["source"],
                               sigma_data=float(config["preconditioning"]["sigma_data"]), seed=seed, quiet=quiet)
    save_motion_guide(guide, model_dir, scale)
    return guide
