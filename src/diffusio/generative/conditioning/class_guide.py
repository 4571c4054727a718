"""Class guidance for image models: classifier guidance (Dhariwal & Nichol 2021) toward the class a
prompt names.

Classifier-free guidance decides the class by pulling every sample of a prompt toward the model's
prototype of it, and that is what costs the shipped model its variety (docs/benchmarks.md).  With
autoguidance alone the samples are nearly as varied as the data, but a T-shirt prompt comes out
as ambiguously as real T-shirts do.  A class guide steers each sample only until a classifier sees
the class, or has the few samples that came out as another garment drawn again.  Three small parts,
trained on the model's own training data:

* :class:`NoisyClassifier`, ``p(class | x_sigma, sigma)`` of noisy images (convolutions over the
  EDM-scaled image and a log-sigma plane), trained at noise levels from 0.02 to 80;
* a **caption reader**, a logistic regression on the MiniLM embedding fitted on the training
  captions (every phrasing of every class), so a free-text prompt gives ``r = p(class | prompt)``;
  a class-conditioned model's one-hot rows are their own wishes;
* a **check classifier**, the same network trained on nearly clean images (noise levels 0.01-0.3),
  which reads finished images for ``Generator.sample(redraws=n)``: an image in which it gives the
  wished classes less than :data:`NAMED_AT` is drawn again.

``Generator.sample(classifier_guidance=w)`` hands the classifier and :meth:`ClassGuide.wishes` to
:class:`~diffusio.generative.core.guidance.ClassifierGuidance`, which wraps the CFG denoiser:
``D + w sigma^2 grad log sum_k r_k p(k | x, sigma)``; unconditional rows are not steered.

>>> guide = ClassGuide(NoisyClassifier(classes=3), torch.zeros(3, 384), torch.zeros(3), ["a", "b", "c"])
>>> guide.wishes(torch.zeros(2, 384)).sum(1)          # all-zero (unconditional) rows wish for nothing
tensor([0., 0.])
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from diffusio._precision import bf16_autocast, use_bf16
from diffusio.errors import UsageError
from diffusio.generative.checkpoint import files as ckpt
from diffusio.generative.core.guidance import check_scale

GUIDE_FILE = "class_guide.safetensors"
SIGMA_RANGE = (0.02, 80.0)  # training noise levels, log-uniform: the sampler's whole range
READER_C = 10.0  # the reader's inverse regularisation, as the video motion reader's
TEST_SIGMAS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0)
SCORED = 2000  # test images the scores are measured on (a score's standard error under 1 point)
CHECK_SIGMA_RANGE = (0.01, 0.3)  # the check classifier's levels: finished images, a little noise against overfitting
CLEAN_SIGMA = 0.02  # how a finished image is read: a low level both classifiers trained at
Items = TypeVar("Items", torch.Tensor, np.ndarray)
NAMED_AT = 0.8  # a redraw is due when the check gives the wished classes less than this probability


def check_redraw_below(below: object, class_names: list[str], where: str = "redraw_below") -> dict[str, float]:
    """``redraw_below``, class name -> the probability under which an image of that class is drawn again
    (classes left out keep :data:`NAMED_AT`), checked against the model's classes; ``where`` names
    the value in errors.

    >>> check_redraw_below({"Shirt": 0.3}, ["T-shirt/top", "Shirt"])
    {'Shirt': 0.3}
    """
    if below is None:
        return {}
    if not isinstance(below, dict):
        raise UsageError(f"{where} must map class names to probabilities, e.g. {{'Shirt': 0.3}}, got {below!r}")
    out = {}
    for name, value in below.items():
        if name not in class_names:
            raise UsageError(f"{where} must name classes of the model ({', '.join(class_names) or 'it has none'}), "
                             f"got {name!r}")
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
            raise UsageError(f"{where} must give each class a probability in [0, 1], got {value!r} for {name!r}")
        out[name] = float(value)
    return out


MAX_REDRAWS = 20  # each redraw round samples the missed items again: more would hide a check that never agrees


def check_redraws(redraws: object) -> int:
    """``redraws`` as a whole number from 0 to :data:`MAX_REDRAWS`, or a UsageError naming it.

    >>> check_redraws(4)
    4
    """
    if isinstance(redraws, bool) or not isinstance(redraws, (int, np.integer)) or not 0 <= redraws <= MAX_REDRAWS:
        raise UsageError(f"redraws must be a whole number from 0 to {MAX_REDRAWS}, got {redraws!r}")
    return int(redraws)


def check_nudges(nudges: object, redraws: int) -> tuple[float, ...]:
    """``nudges``, the classifier-guidance scales of the first redraw rounds, as a tuple of numbers
    > 0, at most ``redraws`` of them (a scale no round reaches would do nothing), or a UsageError.

    >>> check_nudges([2, 4], redraws=5)
    (2.0, 4.0)
    """
    if nudges is None:
        return ()
    if isinstance(nudges, (str, bytes, dict)) or not hasattr(nudges, "__len__"):
        raise UsageError(f"nudges must be a list of classifier-guidance scales, e.g. [2, 4], got {nudges!r}")
    out = []
    for scale in nudges:
        if isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)) \
                or not 0 < scale < float("inf"):
            raise UsageError(f"nudges must be classifier-guidance scales > 0, e.g. [2, 4], got {nudges!r}")
        out.append(float(scale))
    if len(out) > redraws:
        raise UsageError(f"nudges gives {len(out)} scales but images are drawn again at most {redraws} times "
                         "(redraws); give redraws at least as large, or fewer nudges")
    return tuple(out)


def keep_best_of_redraws(items: Items, score: torch.Tensor, bars: torch.Tensor | float, redraws: int,
                         draw: Callable[[torch.Tensor, int], Items],
                         rescore: Callable[[Items, torch.Tensor], torch.Tensor], key: tuple[int, ...]) -> tuple[Items, int]:
    """Draw again, up to ``redraws`` times, the items (images or clips, a tensor or an array, first
    axis the rows) whose ``score`` is under their bar, keeping each row's best try; also how many stay
    under.  ``draw(rows, seed)`` makes those rows again and ``rescore(made, rows)`` scores them.
    Round r's seed comes from ``(*key, r)``, so the same key gives the same items.

    >>> score = torch.tensor([0.9, 0.1])
    >>> again = lambda rows, seed: torch.full((len(rows),), 7.0)
    >>> keep_best_of_redraws(torch.zeros(2), score, 0.8, 2, again, lambda made, rows: torch.ones(len(rows)), (0,))
    (tensor([0., 7.]), 0)
    """
    for round_ in range(1, redraws + 1):
        missed = torch.nonzero(score < bars).flatten()
        if not len(missed):
            break
        again = draw(missed, int(np.random.SeedSequence([*key, round_]).generate_state(1)[0]))
        new_score = rescore(again, missed)
        better = new_score > score[missed]
        numpy_rows = isinstance(items, np.ndarray)  # clips are numpy arrays, images tensors
        rows, pick = (missed[better].numpy(), better.numpy()) if numpy_rows else (missed[better], better)
        items[rows] = again[pick]
        score[missed[better]] = new_score[better]
    return items, int((score < bars).sum())


class NoisyClassifier(nn.Module):
    """``p(class | x_sigma, sigma)``: conv w-w-2w-2w-4w (GroupNorm, SiLU, two 2x poolings), mean pool, linear."""

    def __init__(self, channels: int = 1, width: int = 48, classes: int = 10, sigma_data: float = 0.5):
        super().__init__()
        self.config = {"channels": channels, "width": width, "classes": classes, "sigma_data": sigma_data}
        chans = [channels + 1, width, width, 2 * width, 2 * width, 4 * width]  # +1: the log-sigma plane
        self.convs = nn.ModuleList([nn.Conv2d(a, b, 3, padding=1) for a, b in zip(chans[:-1], chans[1:])])
        self.norms = nn.ModuleList([nn.GroupNorm(8, b) for b in chans[1:]])
        self.head = nn.Linear(4 * width, classes)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=x.dtype).reshape(-1, 1, 1, 1).expand(x.shape[0], 1, 1, 1)
        h = x / (sigma ** 2 + self.config["sigma_data"] ** 2).sqrt()  # EDM's c_in: unit variance at every level
        h = torch.cat([h, (sigma.log() / 4).expand(-1, 1, *x.shape[2:])], dim=1)
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            h = F.silu(norm(conv(h)))
            if i in (1, 3):
                h = F.avg_pool2d(h, 2)
        return self.head(h.mean((2, 3)))


@dataclass
class ClassGuide:
    """The noise-aware classifier and the caption reader (weights ``(K, dim)``, bias ``(K,)``; empty
    for a class-conditioned model, whose one-hot rows are read as they are)."""

    net: NoisyClassifier
    reader_weight: torch.Tensor
    reader_bias: torch.Tensor
    class_names: list[str]
    scores: dict = field(default_factory=dict)
    check: NoisyClassifier | None = None  # reads finished images for redraws (sharper there than ``net``)

    def wishes(self, cond: torch.Tensor) -> torch.Tensor:
        """``p(class | condition)`` (N, K), zero for unconditional (all-zero) rows.  Only the first
        ``dim`` entries of a row are read, so a model's attribute block is ignored."""
        k = len(self.class_names)
        if self.reader_weight.numel() == 0:  # a class-conditioned model: the one-hot row itself
            out = cond[:, :k].float().clamp_min(0)
        else:
            text = cond[:, :self.reader_weight.shape[1]].float()
            out = torch.softmax(text @ self.reader_weight.T + self.reader_bias, dim=1)
        return out * cond.any(dim=1, keepdim=True).float()

    @torch.no_grad()
    def named(self, images: torch.Tensor, wishes: torch.Tensor) -> torch.Tensor:
        """How surely the check classifier (else the guide's) sees a wished class in each finished
        image: ``sum_k r_k p(k | x)`` with the wishes normalised (N,); 1 for rows that wish for nothing."""
        sigma = torch.full((len(images),), CLEAN_SIGMA)
        reader = self.net if self.check is None else self.check
        p = torch.softmax(reader(images.float(), sigma).float(), dim=1)
        total = wishes.sum(1)
        return torch.where(total > 0, (p * wishes).sum(1) / total.clamp_min(1e-12), torch.ones_like(total))

    def named_at(self, wishes: torch.Tensor, below: dict[str, float]) -> torch.Tensor:
        """Each row's redraw bar (N,): the wished classes' bars (``below``, checked by
        :func:`check_redraw_below`; :data:`NAMED_AT` for the rest) weighted as :meth:`named` weighs
        them; exactly :data:`NAMED_AT` for rows that wish only for classes without a bar of their own.

        A class the check cannot name surely even in real images (a shirt: under 0.8 in half of them)
        is better judged by a lower bar; one bar for all would draw its ambiguous half again."""
        shift = torch.tensor([below.get(name, NAMED_AT) - NAMED_AT for name in self.class_names])
        total = wishes.sum(1)
        return NAMED_AT + (wishes.float() * shift).sum(1) / total.clamp_min(1e-12)


def train_class_guide(dataset: str = "fashion-mnist", *, steps: int = 5000, batch_size: int = 128, width: int = 48,
                      shift: int = 2, cond_kind: str = "text", sigma_data: float = 0.5, seed: int = 0,
                      bf16: str = "auto", quiet: bool = True, class_names: list[str] | None = None,
                      check: bool = True) -> ClassGuide:
    """Train the parts on ``dataset``'s training split (random shifts of up to ``shift`` pixels): the
    guide's classifier at every noise level, the caption reader, and (``check``) the check classifier
    of finished images for redraws, the same network at noise levels :data:`CHECK_SIGMA_RANGE`.
    Their test scores are in ``guide.scores``: the classifiers' accuracy on noisy test images per
    noise level, and for a text model the reader's accuracy on held-out paraphrases (Fashion-MNIST).
    ``class_names``: the model's classes, checked against the dataset's before any training."""
    from diffusio.generative.data.datasets import load_dataset

    train = load_dataset(dataset, "train")
    if train.labels is None or not train.class_names:
        raise UsageError(f"{dataset} has no class labels; a class guide learns the classes from labelled images")
    if class_names and list(class_names) != list(train.class_names):
        raise UsageError(f"{dataset}'s classes {train.class_names} are not the model's {list(class_names)}")
    images, labels = torch.from_numpy(train.images), torch.from_numpy(train.labels.astype(np.int64))
    common = dict(steps=steps, batch_size=batch_size, width=width, shift=shift, sigma_data=sigma_data, seed=seed,
                  bf16=bf16, quiet=quiet, classes=len(train.class_names))
    net = train_noisy_classifier(images, labels, sigma_range=SIGMA_RANGE, desc="class guide", **common)
    checker = (train_noisy_classifier(images, labels, sigma_range=CHECK_SIGMA_RANGE, desc="check", **common)
               if check else None)
    if cond_kind == "text":
        weight, bias = fit_caption_reader(train.class_names, train.synonyms, train.captions, train.labels)
    else:
        weight, bias = torch.zeros(0, 0), torch.zeros(0)
    guide = ClassGuide(net, weight, bias, list(train.class_names), check=checker)
    guide.scores = _scores(guide, dataset, seed)
    return guide


def train_noisy_classifier(images: torch.Tensor, labels: torch.Tensor, *, steps: int, batch_size: int, width: int,
                      shift: int, sigma_data: float, seed: int, bf16: str, quiet: bool, classes: int,
                      sigma_range: tuple[float, float], desc: str) -> NoisyClassifier:
    """A :class:`NoisyClassifier` trained at log-uniform noise levels in ``sigma_range``."""
    torch.manual_seed(seed)
    net = NoisyClassifier(channels=images.shape[1], classes=classes, sigma_data=sigma_data, width=width)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    lo, hi = math.log(sigma_range[0]), math.log(sigma_range[1])
    fast = use_bf16(bf16)
    for _ in tqdm(range(steps), desc=desc, disable=quiet):
        idx = torch.randint(len(images), (batch_size,), generator=gen)
        x0 = _shifted(images[idx], shift, gen)
        sigma = torch.exp(torch.rand(batch_size, generator=gen) * (hi - lo) + lo)
        x = x0 + sigma[:, None, None, None] * torch.randn(x0.shape, generator=gen)
        with bf16_autocast(fast):
            logits = net.train()(x, sigma)
        loss = F.cross_entropy(logits.float(), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return net.eval()


def _shifted(x: torch.Tensor, shift: int, gen: torch.Generator) -> torch.Tensor:
    """The batch moved by one random offset of up to ``shift`` pixels, filled with the background (-1)."""
    if not shift:
        return x
    dx, dy = torch.randint(2 * shift + 1, (2,), generator=gen).tolist()
    h, w = x.shape[2:]
    return F.pad(x, (shift,) * 4, value=-1.0)[:, :, dy:dy + h, dx:dx + w]


def fit_caption_reader(class_names: list[str], synonyms: dict | None = None, captions: list[str] | None = None,
                       labels: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The reader's weights ``(K, dim)`` and bias ``(K,)``: a logistic regression on MiniLM fitted on
    the captions a text model trained on (the dataset's own per-image captions, else every phrasing
    of every class name)."""
    from sklearn.linear_model import LogisticRegression

    from diffusio.generative.conditioning.captions import class_captions
    from diffusio.generative.conditioning.text import encode

    if captions is not None and labels is not None:
        pairs = list(dict.fromkeys(zip(captions, labels.tolist())))  # each distinct caption once
        texts, ys = [t for t, _ in pairs], [y for _, y in pairs]
    else:
        texts, ys = [], []
        for k, name in enumerate(class_names):
            phrasings = class_captions(name, synonyms)
            texts += phrasings
            ys += [k] * len(phrasings)
    if len(set(ys)) < 2:
        raise UsageError("a caption reader needs captions of at least two classes")
    reader = LogisticRegression(C=READER_C, max_iter=5000).fit(encode(texts), ys)
    weight = np.zeros((len(class_names), reader.coef_.shape[1]), dtype=np.float32)
    bias = np.full(len(class_names), -30.0, dtype=np.float32)  # a class with no caption is never read
    weight[reader.classes_], bias[reader.classes_] = reader.coef_, reader.intercept_
    return torch.from_numpy(weight), torch.from_numpy(bias)


@torch.no_grad()
def _scores(guide: ClassGuide, dataset: str, seed: int) -> dict:
    from diffusio.generative.data.datasets import load_dataset

    test = load_dataset(dataset, "test")
    pick = np.random.default_rng(seed).choice(len(test), min(SCORED, len(test)), replace=False)
    x0, truth = torch.from_numpy(test.images[pick]), torch.from_numpy(test.labels[pick].astype(np.int64))
    gen = torch.Generator().manual_seed(seed + 1)
    by_sigma = {}
    for s in TEST_SIGMAS:
        x = x0 + s * torch.randn(x0.shape, generator=gen)
        by_sigma[str(s)] = float((guide.net(x, torch.full((len(x),), s)).argmax(1) == truth).float().mean())
    scores = {"classifier_test_accuracy_by_sigma": by_sigma}
    if guide.check is not None:
        scores["check_test_accuracy"] = float((guide.check(x0, torch.full((len(x0),), CLEAN_SIGMA)).argmax(1)
                                               == truth).float().mean())
    if guide.reader_weight.numel() and dataset == "fashion-mnist":
        from diffusio.generative.conditioning.text import encode
        from diffusio.generative.evaluation.evaluate import FASHION_PARAPHRASES

        read = guide.wishes(torch.from_numpy(encode(list(FASHION_PARAPHRASES)))).argmax(1).tolist()
        want = [guide.class_names.index(name) for name in FASHION_PARAPHRASES.values()]
        scores["reader_paraphrase_accuracy"] = float(np.mean(np.array(read) == np.array(want)))
    return scores


def save_class_guide(guide: ClassGuide, model_dir: str | Path, scale: float) -> Path:
    """Write the guide into an image model's folder (``class_guide.safetensors``), name it in the
    folder's config and make ``scale`` the model's default ``classifier_guidance``."""
    return ckpt.save_classifier_guide(model_dir, "class_guide", GUIDE_FILE, guide.net, guide.reader_weight,
                                      guide.reader_bias, {"class_names": guide.class_names, "scores": guide.scores},
                                      sampling={"classifier_guidance": check_scale(scale, "scale")}, check=guide.check)


def load_class_guide(model_dir: Path, config: dict) -> ClassGuide | None:
    """The class guide a model's folder holds, or None when it has none."""
    entry = config.get("class_guide")
    if entry is None:
        return None
    net, weight, bias, check = ckpt.load_classifier_guide(model_dir, entry, NoisyClassifier, GUIDE_FILE, "class guide",
                                                          "diffusio class-guide MODEL")
    names = entry.get("class_names")
    if not isinstance(names, list) or net.config["classes"] != len(names):
        raise UsageError(f"{model_dir}: its class guide knows {net.config['classes']} classes but names {names!r}; "
                         "train it again with `diffusio class-guide MODEL`")
    if weight.numel() and (weight.shape[0] != len(names) or bias.shape != (len(names),)):
        raise UsageError(f"{model_dir}: its class guide's caption reader has shape {tuple(weight.shape)}; "
                         f"expected ({len(names)}, dim)")
    if check is not None and check.config["classes"] != len(names):
        raise UsageError(f"{model_dir}: its class guide's check classifier knows {check.config['classes']} classes, "
                         f"not {len(names)}; train it again with `diffusio class-guide MODEL`")
    return ClassGuide(net, weight, bias, names, entry.get("scores", {}), check)


def attach_class_guide(model_dir: str | Path, *, steps: int = 5000, scale: float = 1.0, seed: int = 0,
                       quiet: bool = True) -> ClassGuide:
    """Train a class guide on the data the image model in ``model_dir`` (a run folder) was trained on,
    and write it there, steering at ``scale`` by default.

    >>> guide = attach_class_guide("runs/fashion", steps=5000)      # doctest: +SKIP
    >>> guide.scores["classifier_test_accuracy_by_sigma"]["0.5"]     # doctest: +SKIP
    0.88
    """
    from diffusio.generative.checkpoint.models import check_not_shipped

    check_not_shipped(model_dir, "class guide")
    model_dir = Path(model_dir)
    config = ckpt.load_config(model_dir)
    if config.get("kind", "image") != "image":
        raise UsageError(f"{model_dir} holds a {config['kind']} model; a class guide steers image models")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise UsageError(f"steps must be a positive whole number, got {steps!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UsageError(f"seed must be a non-negative whole number, got {seed!r}")
    if isinstance(scale, bool):
        raise UsageError(f"scale must be a number, got {scale!r}")
    check_scale(scale, "scale")
    conditioning = config.get("conditioning", {})
    if conditioning.get("kind") not in ("text", "class"):
        raise UsageError(f"{model_dir} is not conditioned on classes or text (conditioning: "
                         f"{conditioning.get('kind', 'none')}); a class guide steers toward a named class")
    dataset = config.get("data", {}).get("name")
    if not dataset:
        raise UsageError(f"{model_dir} does not say which data it was trained on; a class guide trains on that data")
    guide = train_class_guide(dataset, steps=steps, cond_kind=conditioning["kind"], seed=seed, quiet=quiet,
                              sigma_data=float(config.get("preconditioning", {}).get("sigma_data", 0.5)),
                              class_names=conditioning.get("class_names"))
    save_class_guide(guide, model_dir, scale)
    return guide
