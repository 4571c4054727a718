"""The two shipped judges of clips, trained on real Moving Fashion-MNIST only.

* An **object classifier**: the image stack's SmallCNN trained on Fashion-MNIST shrunk to the
  clips' object size (16 px).  The 28 px image classifier names only 59% of the objects in real
  clips once they are shrunk (measured in docs/benchmarks-video.md), so it cannot judge them.
* A **space-time classifier** (:class:`ClipNet`): 3-D convolutions over (T, H, W) with two heads,
  the object's class and its motion; its 128-d penultimate features are the space for the
  Fréchet distance between sets of clips, as the image classifier's are for images.

>>> judge = load_clip_classifier()            # doctest: +SKIP
>>> judge.features(clips).shape               # doctest: +SKIP
(8, 128)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from diffusio._io import atomic_save_json
from diffusio.errors import UsageError
from diffusio.generative.checkpoint import files as ckpt
from diffusio.generative.evaluation.classifier import Classifier, fit_classifier, load_classifier, save_classifier
from diffusio.video.clips import MOTIONS, _sprites, moving_clips
from diffusio.video.generator import to_tensor

JUDGES_DIR = Path(__file__).resolve().parent / "weights" / "judges"


def object_classifier(object_size: int = 16) -> Classifier:
    """The shipped classifier of Fashion-MNIST objects at ``object_size`` pixels."""
    path = JUDGES_DIR / f"fashion-mnist-{object_size}"
    if not (path / "classifier.json").is_file():
        raise UsageError(f"no shipped object classifier for {object_size}px objects; train one with "
                         f"diffusio.video.classifier.train_object_classifier(object_size={object_size})")
    return load_classifier(path)


def train_object_classifier(object_size: int = 16, epochs: int = 4, seed: int = 0, quiet: bool = True) -> Classifier:
    """SmallCNN on the training sprites at ``object_size``, upsampled to 28 px as the crops are."""
    def prepare(split):
        sprites, labels, names = _sprites("fashion-mnist", split, object_size)
        x = torch.from_numpy(sprites.copy()).float()[:, None] / 127.5 - 1
        return F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False).numpy(), labels, names

    x, y, names = prepare("train")
    clf = fit_classifier(x, y, names, f"fashion-mnist-{object_size}", epochs=epochs, seed=seed, quiet=quiet)
    tx, ty, _ = prepare("test")
    clf.test_accuracy = float((clf.predict(tx) == ty).mean())
    return clf


class ClipNet(nn.Module):
    """conv3d 16-32-64 with pooling, fc 128, then a class head and a motion head."""

    def __init__(self, channels: int = 1, classes: int = 10, motions: int = len(MOTIONS), feature_dim: int = 128):
        super().__init__()
        self.config = {"channels": channels, "classes": classes, "motions": motions, "feature_dim": feature_dim}
        self.convs = nn.ModuleList([nn.Conv3d(channels, 16, 3, padding=1), nn.Conv3d(16, 32, 3, padding=1),
                                    nn.Conv3d(32, 64, 3, padding=1)])
        self.norms = nn.ModuleList([nn.BatchNorm3d(16), nn.BatchNorm3d(32), nn.BatchNorm3d(64)])
        self.fc = nn.Linear(64 * 4 * 2 * 2, feature_dim)
        self.classes, self.motions = nn.Linear(feature_dim, classes), nn.Linear(feature_dim, motions)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            h = F.relu(norm(conv(h)))
            h = F.max_pool3d(h, (1, 2, 2)) if i < 2 else F.adaptive_avg_pool3d(h, (4, 2, 2))
        return F.relu(self.fc(h.flatten(1)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        return self.classes(f), self.motions(f)


@dataclass
class ClipClassifier:
    net: ClipNet
    test_accuracy: dict | None = None

    @torch.no_grad()
    def _map(self, clips: np.ndarray, fn, batch: int = 64) -> np.ndarray:
        self.net.eval()
        return torch.cat([fn(to_tensor(clips[i:i + batch])) for i in range(0, len(clips), batch)]).numpy()

    def features(self, clips: np.ndarray) -> np.ndarray:
        """128-d features of uint8 clips (N, T, H, W, C)."""
        return self._map(clips, self.net.features).astype(np.float64)

    def predict(self, clips: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """(class index, motion name) per clip."""
        logits = self._map(clips, lambda x: torch.cat(self.net(x), dim=1))
        classes = logits[:, :self.net.config["classes"]].argmax(1)
        motions = [MOTIONS[i] for i in logits[:, self.net.config["classes"]:].argmax(1)]
        return classes, motions


def train_clip_classifier(steps: int = 800, batch_size: int = 32, seed: int = 0, quiet: bool = True) -> ClipClassifier:
    """:class:`ClipNet` on fresh training-split clips every step; test accuracy on 1,000 test clips."""
    torch.manual_seed(seed)
    net = ClipNet()
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    motion_index = {m: i for i, m in enumerate(MOTIONS)}
    for step in tqdm(range(steps), desc="clip classifier", disable=quiet):
        data = moving_clips(batch_size, seed=10_000_000 * (seed + 1) + step)
        class_logits, motion_logits = net.train()(to_tensor(data.clips))
        motions = torch.tensor([motion_index[m[0]] for m in data.motions])
        loss = F.cross_entropy(class_logits, torch.from_numpy(data.classes[:, 0])) + F.cross_entropy(motion_logits, motions)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    clf = ClipClassifier(net.eval())
    test = moving_clips(1000, split="test", seed=seed + 7)
    classes, motions = clf.predict(test.clips)
    clf.test_accuracy = {"class": float((classes == test.classes[:, 0]).mean()),
                         "motion": float(np.mean([a == b[0] for a, b in zip(motions, test.motions)]))}
    return clf


def save_clip_classifier(clf: ClipClassifier, path: str | Path) -> None:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    ckpt.atomic_save_tensors(path / "classifier.safetensors", clf.net.state_dict())
    atomic_save_json(path / "classifier.json", {"format": "diffusio-clip-classifier", "net": clf.net.config,
                                                "test_accuracy": clf.test_accuracy})


def load_clip_classifier(path: str | Path = JUDGES_DIR / "clips") -> ClipClassifier:
    """The shipped space-time classifier (or one saved at ``path``)."""
    path = Path(path)
    if not (path / "classifier.json").is_file():
        raise UsageError(f"no clip classifier in {path}; train one with diffusio.video.classifier.train_clip_classifier")
    meta = json.loads((path / "classifier.json").read_text())
    net = ClipNet(**meta["net"])
    ckpt.load_state_into(net, {f"n.{k}": v for k, v in ckpt.load_tensors(path / "classifier.safetensors").items()},
                         "n.", path)
    return ClipClassifier(net.eval(), meta.get("test_accuracy"))


def train_judges(folder: str | Path = JUDGES_DIR, quiet: bool = False) -> dict:
    """Train and save both judges (run once; the results ship with diffusio)."""
    obj = train_object_classifier(quiet=quiet)
    save_classifier(obj, Path(folder) / "fashion-mnist-16")
    clips = train_clip_classifier(quiet=quiet)
    save_clip_classifier(clips, Path(folder) / "clips")
    return {"object_test_accuracy": obj.test_accuracy, "clip_test_accuracy": clips.test_accuracy}
