"""Control by image features: measure them, rank them within their class, and condition on them.

A model trained with attributes takes, besides its prompt, a wish for each named feature as a
number in [0, 1]: the feature's *rank among training images of the same class*.  ``width=0.9``
asks for a garment wider than 90% of the training garments of its kind, so every value is
meaningful for every class (a wide trouser and a wide coat differ in pixels, not in rank).

The features are measured on the garment's ink (pixels brighter than :data:`INK`), white on black:

* ``brightness``: mean intensity of the ink pixels (dark fabric -> low);
* ``width`` / ``height``: the horizontal / vertical extent holding the central 95% of the ink mass,
  as a fraction of the image side (robust to stray pixels, unlike a bounding box).

The condition vector of such a model is ``[prompt embedding | 2*rank - 1 per attribute | 1 per
given attribute]``; an attribute left out is all zeros, which training taught as "anything".

>>> import numpy as np
>>> img = np.zeros((1, 28, 28), np.uint8); img[0, 4:24, 10:18] = 200
>>> {k: round(float(v[0]), 3) for k, v in measure(img).items()}
{'brightness': 0.784, 'width': 0.271, 'height': 0.679}
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

from diffusio.errors import UsageError

INK = 0.1                 # pixels above this (in [0, 1]) belong to the object
MASS = (0.025, 0.975)     # the extent holds the central 95% of the ink mass
QUANTILES = 101           # stored per class and attribute: ranks in steps of 1%
FEATURES = ("brightness", "width", "height")


def _unit(images: np.ndarray) -> np.ndarray:
    """uint8 [N, H, W] or float [-1, 1] [N, 1, H, W] -> float [N, H, W] in [0, 1]."""
    x = np.asarray(images)
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    else:
        x = (x.astype(np.float32) + 1.0) / 2.0
    if x.ndim == 4:
        if x.shape[1] != 1:
            raise UsageError(f"attributes are measured on grey images; got {x.shape[1]} channels")
        x = x[:, 0]
    if x.ndim != 3:
        raise UsageError(f"expected images [N, H, W] or [N, 1, H, W], got shape {x.shape}")
    return np.clip(x, 0.0, 1.0)


def _crossing(frac: np.ndarray, level: float) -> np.ndarray:
    """Sub-pixel position where each row's cumulative mass fraction reaches ``level``.

    Pixel i spans [i, i+1] and its mass is spread evenly over it, so the cumulative curve is
    piecewise linear and the crossing is continuous (extents are not stuck on whole pixels).
    """
    i = (frac < level).sum(axis=1).clip(max=frac.shape[1] - 1)
    rows = np.arange(len(frac))
    before = np.where(i > 0, frac[rows, np.maximum(i - 1, 0)], 0.0)
    step = np.maximum(frac[rows, i] - before, 1e-8)
    return i + np.clip((level - before) / step, 0.0, 1.0)


def _extent(mass: np.ndarray) -> np.ndarray:
    """Fraction of the axis between the 2.5% and 97.5% points of each row's ink mass [N, L]."""
    cum = np.cumsum(mass, axis=1)
    frac = cum / np.maximum(cum[:, -1:], 1e-8)
    return (_crossing(frac, MASS[1]) - _crossing(frac, MASS[0])) / mass.shape[1]


def measure(images: np.ndarray) -> dict[str, np.ndarray]:
    """Each feature of :data:`FEATURES` for every image, as float arrays of length N."""
    x = _unit(images)
    ink = np.where(x > INK, x, 0.0)
    count = (x > INK).sum(axis=(1, 2))
    brightness = ink.sum(axis=(1, 2)) / np.maximum(count, 1)
    return {"brightness": brightness, "width": _extent(ink.sum(axis=1)), "height": _extent(ink.sum(axis=2))}


def class_quantiles(values: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """[n_classes, QUANTILES] quantile table of one feature, per class."""
    levels = np.linspace(0.0, 1.0, QUANTILES)
    out = np.zeros((n_classes, QUANTILES))
    for c in range(n_classes):
        mine = values[labels == c]
        if len(mine) == 0:
            raise UsageError(f"class {c} has no images; attributes need images of every class")
        out[c] = np.quantile(mine, levels)
    return out


def to_rank(values: np.ndarray, labels: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Feature values -> rank in [0, 1] within each image's class (ties get their middle rank)."""
    levels = np.linspace(0.0, 1.0, QUANTILES)
    ranks = np.empty(len(values))
    for c in np.unique(labels):
        rows = labels == c
        q = table[c]
        # the mean of the left- and right-continuous inverse: a value shared by many images
        # (common for extents) gets the middle of its flat run, not its bottom.
        left = np.interp(values[rows], q, levels, left=0.0, right=1.0)
        right = 1.0 - np.interp(-values[rows], -q[::-1], levels, left=0.0, right=1.0)
        ranks[rows] = (left + right) / 2
    return ranks


class Attributes:
    """The attribute part of a model's condition: names and per-class quantile tables."""

    def __init__(self, names: Sequence[str], tables: Mapping[str, np.ndarray]):
        self.names = list(names)
        self.tables = {k: np.asarray(tables[k], dtype=np.float64) for k in self.names}

    @classmethod
    def fit(cls, names: Sequence[str], images: np.ndarray, labels: np.ndarray, n_classes: int) -> "Attributes":
        check_names(names)
        feats = measure(images)
        return cls(names, {k: class_quantiles(feats[k], labels, n_classes) for k in names})

    @classmethod
    def from_config(cls, conditioning: dict) -> "Attributes | None":
        spec = conditioning.get("attributes")
        if not spec:
            return None
        return cls(spec["names"], {k: np.asarray(v) for k, v in spec["quantiles"].items()})

    def config(self) -> dict:
        return {"names": self.names, "measure": {"ink": INK, "mass": list(MASS)},
                "quantiles": {k: np.round(t, 6).tolist() for k, t in self.tables.items()}}

    @property
    def dim(self) -> int:
        return 2 * len(self.names)

    def ranks(self, images: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
        """Measured rank of every attribute, within each image's class."""
        feats = measure(images)
        return {k: to_rank(feats[k], np.asarray(labels), self.tables[k]) for k in self.names}

    def vectors(self, wishes: Mapping[str, float] | None, n: int) -> torch.Tensor:
        """The [n, dim] attribute block for one set of wishes (missing ones stay zero)."""
        wishes = dict(wishes or {})
        unknown = sorted(set(wishes) - set(self.names))
        if unknown:
            raise UsageError(f"unknown attribute {unknown[0]!r}; this model knows: {', '.join(self.names)}")
        block = torch.zeros(n, self.dim)
        for i, name in enumerate(self.names):
            if name in wishes:
                value = check_value(name, wishes[name])
                block[:, i] = 2 * value - 1
                block[:, len(self.names) + i] = 1.0
        return block

    def training_block(self, ranks: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Rows for a batch: ranks [B, k] in [0, 1] and keep [B, k] (False: attribute left out)."""
        keep = keep.to(ranks.dtype)
        return torch.cat([(2 * ranks - 1) * keep, keep], dim=1)


def check_names(names: Sequence[str]) -> None:
    if not names:
        raise UsageError("no attributes given; choose from " + ", ".join(FEATURES))
    for name in names:
        if name not in FEATURES:
            raise UsageError(f"unknown attribute {name!r}; choose from {', '.join(FEATURES)}")
    if len(set(names)) != len(names):
        raise UsageError(f"attribute listed twice in {', '.join(names)}")


def check_value(name: str, value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"attribute {name} needs a number in [0, 1], got {value!r}") from None
    if not 0.0 <= value <= 1.0:
        raise UsageError(f"attribute {name}={value} is outside [0, 1]; it is a rank within the class "
                         "(0.5 = typical, 0.9 = more than 90% of the training images)")
    return value


def parse_wishes(items: Sequence[str] | None) -> dict[str, float]:
    """``["brightness=0.2", "width=0.9"]`` (the CLI's repeated ``--attr``) -> a dict."""
    out: dict[str, float] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--attr takes NAME=VALUE (e.g. brightness=0.2), got {item!r}")
        name = name.strip()
        if name in out:
            raise UsageError(f"--attr {name} given twice")
        out[name] = check_value(name, value)
    return out


def pad_condition_input(state: dict[str, torch.Tensor], key: str, extra: int) -> dict[str, torch.Tensor]:
    """A parent's weights with ``extra`` zero input columns on the condition's first layer.

    The child then computes exactly what the parent did while the new inputs are zero, so a
    fine-tune with attributes starts from the parent model rather than from scratch.
    """
    if key not in state:
        raise UsageError(f"the parent model has no condition input ({key}); it cannot take attributes")
    out = dict(state)
    w = state[key]
    out[key] = torch.cat([w, w.new_zeros(w.shape[0], extra)], dim=1)
    return out


SWEEP = (0.1, 0.3, 0.5, 0.7, 0.9)


def attribute_control(gen, classifier, per_cell: int = 8, values: Sequence[float] = SWEEP, seed: int = 0,
                      only: Sequence[str] | None = None, **sampling) -> dict:
    """How well each attribute follows the request: sweep it over ``values`` for every class
    (``per_cell`` images each, other attributes left free), measure the rank it came out at, and
    report the Spearman correlation between requested and measured ranks (all images pooled), the
    mean measured rank per requested value, and the classifier's class accuracy on the sweep.
    ``only`` restricts the sweep to some attributes."""
    from scipy.stats import spearmanr

    from diffusio.generative.data.datasets import to_unit_range

    attrs = gen.model.attributes
    if attrs is None:
        raise UsageError("this model takes no attributes; train one with --attributes")
    names = gen.class_names
    lowered = [c.lower() for c in classifier.class_names]
    to_clf = np.array([lowered.index(n.lower()) for n in names])
    labels = np.repeat(np.arange(len(names)), per_cell)
    report = {}
    for a, name in enumerate(attrs.names):
        if only is not None and name not in only:
            continue
        wanted, measured, correct = [], [], []
        for v, value in enumerate(values):
            images = gen.generate(label=labels.tolist(), n=len(labels), attrs={name: value},
                                  seed=seed + 1000 * a + v, **sampling)
            measured.append(attrs.ranks(images, labels)[name])
            wanted.append(np.full(len(labels), value))
            correct.append(classifier.predict(to_unit_range(images[:, None])) == to_clf[labels])
        got = np.concatenate(measured)
        # one requested value, or identical measurements, leave the correlation undefined
        rho = spearmanr(np.concatenate(wanted), got).statistic if len(values) > 1 and np.ptp(got) > 0 else float("nan")
        report[name] = {"spearman": float(rho), "values": list(values),
                        "mean_measured": [float(m.mean()) for m in measured],
                        "class_accuracy": float(np.concatenate(correct).mean()), "n": int(len(labels) * len(values))}
    return report
