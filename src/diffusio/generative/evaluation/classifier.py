"""A small CNN per dataset: the feature extractor for Frechet distance and the judge of class accuracy.

No Inception network can be downloaded offline, so diffusio trains and ships a
small classifier for each supported dataset; its 128-d penultimate layer plays
the role Inception's pool layer plays for FID.

A *context* classifier is the same network trained with random parts of each image hidden
(:func:`hide_random_parts`), so that it names the class from what is left: inpainting asks it
which garment the visible half shows. It is a separate network from the judge above, trained
with another seed, so the judge is not asked to agree with itself.

>>> clf = load_classifier("fashion-mnist")                      # doctest: +SKIP
>>> clf.predict(images).shape                                   # doctest: +SKIP
(16,)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from diffusio._io import atomic_save_json
from diffusio.errors import UsageError
from diffusio.generative.checkpoint import files as ckpt

CLASSIFIER_DIR = Path(__file__).parent.parent / "weights" / "classifiers"


class SmallCNN(nn.Module):
    """conv16-pool-conv32-pool-conv64-(3x3 pool)-fc128-fc(classes); any input size >= 8."""

    def __init__(self, channels: int = 1, classes: int = 10, feature_dim: int = 128):
        super().__init__()
        self.config = {"channels": channels, "classes": classes, "feature_dim": feature_dim}
        self.conv1 = nn.Conv2d(channels, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 64, 3, padding=1)
        self.bn1, self.bn2, self.bn3 = nn.BatchNorm2d(32), nn.BatchNorm2d(64), nn.BatchNorm2d(64)
        self.fc = nn.Linear(64 * 9, feature_dim)
        self.drop = nn.Dropout(0.3)
        self.out = nn.Linear(feature_dim, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        h = F.max_pool2d(F.relu(self.bn2(self.conv2(h))), 2)
        h = F.adaptive_avg_pool2d(F.relu(self.bn3(self.conv3(h))), 3)
        return F.relu(self.fc(h.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(self.features(x)))


class Classifier:
    """A trained SmallCNN with batched numpy-in, numpy-out helpers."""

    def __init__(self, net: SmallCNN, class_names: list[str], dataset: str, test_accuracy: float | None = None,
                 context: bool = False, hidden_test_accuracy: float | None = None):
        self.net, self.class_names, self.dataset = net.eval(), class_names, dataset
        self.test_accuracy = test_accuracy
        self.context = context  # trained with random parts hidden (see the module notes)
        self.hidden_test_accuracy = hidden_test_accuracy  # test accuracy with random parts hidden

    @torch.no_grad()
    def _map(self, images: np.ndarray, fn, batch: int = 500) -> np.ndarray:
        out = [fn(torch.as_tensor(np.asarray(images[i:i + batch], dtype=np.float32)))
               for i in range(0, len(images), batch)]
        return torch.cat(out).numpy()

    def features(self, images: np.ndarray) -> np.ndarray:
        """128-d features of images in [-1, 1] (NCHW)."""
        return self._map(images, self.net.features).astype(np.float64)

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        return self._map(images, lambda x: self.net(x).softmax(1))

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.predict_proba(images).argmax(1)

    def predict_visible(self, images: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The class of each image from its visible part only (``mask`` 1 = hidden, any shape that
        broadcasts to the images); what is hidden is blanked as in training, so it cannot matter."""
        x = torch.as_tensor(np.asarray(images, dtype=np.float32))
        return self.predict(hide(x, torch.as_tensor(np.asarray(mask, dtype=np.float32))).numpy())


def train_classifier(dataset: str, epochs: int = 6, batch_size: int = 128, seed: int = 0,
                     quiet: bool = False, test: str | None = None, context: bool = False) -> Classifier:
    """Train a SmallCNN with small random shifts as augmentation; reports accuracy on the test split
    of ``test`` (default: the dataset's own).  ``context``: also hide a random part of every
    training image (a context classifier), and report test accuracy with random parts hidden too."""
    from diffusio.generative.data.datasets import load_dataset

    train = load_dataset(dataset, "train")
    try:
        test_set = load_dataset(test or dataset, "test")
    except UsageError as err:
        raise UsageError(f"{err}; name a labelled dataset to test on, e.g. --test fashion-mnist") from err
    if test_set.class_names != train.class_names:
        raise UsageError(f"the test data's classes ({test_set.class_names}) differ from the training data's "
                         f"({train.class_names}); test on data with the same classes")
    if train.labels is None:
        raise UsageError(f"{dataset} has no labels; a classifier needs a labelled dataset")
    clf = fit_classifier(train.images, train.labels, train.class_names, dataset, epochs=epochs,
                         batch_size=batch_size, seed=seed, quiet=quiet, context=context)
    clf.test_accuracy = float((clf.predict(test_set.images) == test_set.labels).mean())
    if context:
        x = torch.from_numpy(np.ascontiguousarray(test_set.images, dtype=np.float32))
        hidden = hide_random_parts(len(x), *x.shape[-2:], torch.Generator().manual_seed(seed + 1))
        clf.hidden_test_accuracy = float((clf.predict_visible(x, hidden) == test_set.labels).mean())
    return clf


def fit_classifier(images: np.ndarray, labels: np.ndarray, class_names: list[str], name: str = "custom", *,
                   epochs: int = 6, steps: int | None = None, batch_size: int = 128, seed: int = 0,
                   quiet: bool = True, context: bool = False) -> Classifier:
    """A SmallCNN fitted to float images [N, C, H, W] in [-1, 1]; ``steps`` (if given) replaces ``epochs``.
    ``context``: hide a random part of every training image (:func:`hide_random_parts`)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = SmallCNN(images.shape[1], len(class_names))
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    x, y = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)), torch.from_numpy(np.asarray(labels))
    batch_size = min(batch_size, len(x))
    per_epoch = len(x) // batch_size
    steps = steps or epochs * per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    bar = tqdm(total=steps, desc=f"classifier {name}", disable=quiet)
    pad = max(1, images.shape[2] // 14)
    done = 0
    while done < steps:
        order = torch.randperm(len(x), generator=gen)
        for i in range(min(per_epoch, steps - done)):
            idx = order[i * batch_size:(i + 1) * batch_size]
            xb = _random_shift(x[idx], pad, gen)
            if context:
                xb = hide(xb, hide_random_parts(len(xb), *xb.shape[-2:], gen))
            loss = F.cross_entropy(net.train()(xb), y[idx], label_smoothing=0.05)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            done += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    bar.close()
    return Classifier(net.eval(), class_names, name, context=context)


def hide(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Images with the pixels where ``mask`` is 1 set to -1 (black, the background of our datasets)."""
    return torch.where(mask > 0, torch.full_like(images, -1.0), images)


# what a context classifier learns to do without: no part (so whole images stay easy), a half-plane
# from any side, or a box, each covering 30-70% of the height or width (the box: 30-80%)
NOTHING_HIDDEN, HALF_PLANE = 0.15, 0.45


def hide_random_parts(n: int, h: int, w: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` random masks [n, 1, h, w] (1 = hidden): nothing, a half-plane, or a box.

    >>> m = hide_random_parts(1000, 28, 28, torch.Generator().manual_seed(0))
    >>> 0.25 < float(m.mean()) < 0.45
    True
    """
    u, side, a, b, c, d = torch.rand(6, n, 1, 1, generator=gen)
    side = (side * 4).long()
    ys = (torch.arange(h, dtype=torch.float32) + 0.5).reshape(1, h, 1) / h  # pixel centres in (0, 1)
    xs = (torch.arange(w, dtype=torch.float32) + 0.5).reshape(1, 1, w) / w
    frac = 0.3 + 0.4 * a
    sides = [ys < frac, ys >= 1 - frac, xs < frac, xs >= 1 - frac]  # top, bottom, left, right
    half = torch.stack([s.expand(n, h, w) for s in sides]).gather(0, side.expand(1, n, h, w))[0]
    bh, bw = 0.3 + 0.5 * b, 0.3 + 0.5 * c
    y0, x0 = (1 - bh) * d, (1 - bw) * torch.rand(n, 1, 1, generator=gen)
    box = (ys >= y0) & (ys < y0 + bh) & (xs >= x0) & (xs < x0 + bw)
    mask = torch.where(u < NOTHING_HIDDEN, torch.zeros_like(box), torch.where(u < NOTHING_HIDDEN + HALF_PLANE, half, box))
    return mask.float()[:, None]


def _random_shift(x: torch.Tensor, pad: int, gen: torch.Generator) -> torch.Tensor:
    h, w = x.shape[-2:]
    padded = F.pad(x, (pad,) * 4, value=-1.0)
    dy, dx = (int(v) for v in torch.randint(0, 2 * pad + 1, (2,), generator=gen))
    return padded[..., dy:dy + h, dx:dx + w]


def save_classifier(clf: Classifier, path: str | Path) -> None:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    ckpt.atomic_save_tensors(path / "classifier.safetensors", clf.net.state_dict())
    atomic_save_json(path / "classifier.json", {"format": "diffusio-classifier", "dataset": clf.dataset,
                                                      "class_names": clf.class_names, "net": clf.net.config,
                                                      "test_accuracy": clf.test_accuracy, "context": clf.context,
                                                      "hidden_test_accuracy": clf.hidden_test_accuracy})


def load_classifier(dataset_or_path: str | Path) -> Classifier:
    """The shipped classifier for a dataset name (``fashion-mnist``), or one saved at a path."""
    import json

    path = Path(dataset_or_path)
    if not (path / "classifier.json").is_file():
        path = CLASSIFIER_DIR / str(dataset_or_path)
    if not (path / "classifier.json").is_file():
        known = sorted(p.name for p in CLASSIFIER_DIR.glob("*") if (p / "classifier.json").is_file())
        raise UsageError(f"no evaluation classifier for {str(dataset_or_path)!r}; shipped: {', '.join(known)}. "
                         "Train one with: diffusio classifier --data DATASET --out DIR")
    meta = json.loads((path / "classifier.json").read_text())
    net = SmallCNN(**meta["net"])
    ckpt.load_state_into(net, {f"n.{k}": v for k, v in ckpt.load_tensors(path / "classifier.safetensors").items()},
                         "n.", path)
    return Classifier(net, meta["class_names"], meta["dataset"], meta.get("test_accuracy"),
                      bool(meta.get("context", False)), meta.get("hidden_test_accuracy"))


def context_classifier(dataset: str) -> Classifier | None:
    """The shipped context classifier for a dataset (``fashion-mnist`` -> ``fashion-mnist-context``), if any."""
    path = CLASSIFIER_DIR / f"{dataset}-context"
    return load_classifier(path) if (path / "classifier.json").is_file() else None
