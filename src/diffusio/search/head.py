"""The class head of an index: a linear classifier of a model's classes in feature space, learnt
from images the model generated (no label of any real image of the collection).

It reads the block before pooling (:meth:`DiffusionFeatures.embed_with_block`), gives every
stored vector its class posterior and ranks text queries by the probability of the prompt's
classes.  A model may ship a precomputed head beside its weights
(``search-head.safetensors``, tied to the weights by their sha256): a large, varied bank of samples
is too slow to draw at a user's first index, so :func:`fit_head_from_samples` fits it once from a
set written by ``diffusio synthesize``.  Without one, :func:`class_head` draws a small bank.

>>> import numpy as np
>>> feats = np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 0, 1, 2, 3]]
>>> head = fit_class_head(feats, np.array([0, 1, 0, 1, 0, 1, 0, 1]), 2)
>>> head.shape                               # [classes, dim + 1]: weights, then bias
(2, 5)
>>> posterior(feats[:2], head).argmax(1).tolist()
[0, 1]
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from diffusio.errors import UsageError
from diffusio.search.features import DiffusionFeatures, recipe

HEAD_FILE = "search-head.safetensors"  # a model's shipped head, beside model.safetensors
HEAD_FORMAT = "diffusio-search-head"
BANK_C = 3.0     # inverse L2 strength for a small generated bank (tens of images per class)
SAMPLES_C = 30.0  # ... and for a large set of samples (chosen on a validation split of training images)


def fit_class_head(features: np.ndarray, labels: np.ndarray, n_classes: int, c: float = BANK_C) -> np.ndarray:
    """A multinomial logistic regression of ``labels`` on ``features``, as ``[n_classes, dim + 1]``
    (weights, then bias).  With one image per class: the class means, scaled."""
    labels = np.asarray(labels)
    if np.bincount(labels, minlength=n_classes).min() <= 1:
        coef = np.zeros((n_classes, features.shape[1]))
        coef[labels] = 10 * features
        return np.concatenate([coef, np.zeros((n_classes, 1))], 1).astype(np.float32)
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=c, max_iter=3000).fit(features, labels)
    coef, bias = lr.coef_, lr.intercept_
    if n_classes == 2:  # sklearn keeps one row for two classes
        coef, bias = np.concatenate([-coef, coef]) / 2, np.array([-bias[0], bias[0]]) / 2
    return np.concatenate([coef, bias[:, None]], 1).astype(np.float32)


def posterior(features: np.ndarray, head: np.ndarray) -> np.ndarray:
    """``p(class | features)`` under ``head``, ``[N, classes]``."""
    logits = features @ head[:, :-1].T + head[:, -1]
    p = np.exp(logits - logits.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


def class_head(fx: DiffusionFeatures, conds, per_class: int, steps: int) -> np.ndarray:
    """A head learnt from ``per_class`` images sampled under each class condition (seeded) with
    ``steps`` sampling steps.  Cached on disk by model weights, recipe and bank."""
    import torch

    from diffusio._io import atomic_path
    from diffusio.generative.conditioning.text import cache_dir

    # the bank is sampled at the model's default guidance: a changed default must not reuse an old head
    guidance = fx.sampling_guidance()
    key = hashlib.sha256(json.dumps([fx.digest, recipe(), per_class, steps, guidance, "logreg", BANK_C]).encode()
                         ).hexdigest()[:24]
    cached = cache_dir().parent / "search" / f"head-{key}.npy"
    try:
        head = np.load(cached, allow_pickle=False)
        if head.shape == (len(conds), fx.block_dim + 1):
            return head
    except (OSError, ValueError):
        pass
    rows = torch.repeat_interleave(conds, per_class, dim=0)
    feats = fx.embed_with_block(fx.generate(rows, len(rows), steps, seed=0))[1]
    head = fit_class_head(feats, np.repeat(np.arange(len(conds)), per_class), len(conds))
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cached) as tmp, open(tmp, "wb") as fh:
            np.save(fh, head)
    except (OSError, UsageError):
        pass  # a read-only cache only costs time
    return head


def fit_head_from_samples(model: str | Path, samples: str | Path | list, output: str | Path | None = None,
                          c: float | None = None) -> tuple[Path, dict]:
    """Fit a model's class head to labelled sets of its own samples (``.npz`` files written by
    ``diffusio synthesize MODEL``; one path or a list, pooled) and write it to ``output`` (default:
    ``search-head.safetensors`` in the model's folder), where ``ImageIndex`` finds it; ``c``: the
    logistic regression's inverse L2 strength (default ``SAMPLES_C``).  Returns the path and its
    metadata."""
    from diffusio._io import check_output
    from diffusio.generative.data.datasets import load_npz

    if output is not None:  # a bad -o fails before a minute of embedding, not after
        check_output(output, suffixes=(".safetensors",), flag="-o")
    files = [samples] if isinstance(samples, (str, Path)) else list(samples)
    if not files:
        raise UsageError("samples: give at least one .npz of the model's samples")
    c = SAMPLES_C if c is None else c
    if isinstance(c, bool) or not isinstance(c, (int, float)) or not np.isfinite(c) or c <= 0:
        raise UsageError(f"c must be a positive number, got {c!r}")
    fx = DiffusionFeatures.load(model)
    known = fx.class_conditions()
    if known is None:
        raise UsageError(f"model {model} has no classes; a class head needs a model trained with class names")
    names = known[0]
    sets = [load_npz(f) for f in files]   # every file is checked before the first is embedded
    for f, data in zip(files, sets):
        if data.class_names != names or data.labels is None:
            raise UsageError(f"{f} is labelled with {data.class_names}, not with {model}'s classes {names}; "
                             f"make it with: diffusio synthesize {model} --per-class 1000 -o samples.npz")
        if data.images.shape[1:] != fx.image_shape:
            raise UsageError(f"{f} holds images of shape {data.images.shape[1:]}, the model makes {fx.image_shape}")
    feats = np.concatenate([fx.embed_with_block(data.images)[1] for data in sets])
    labels = np.concatenate([data.labels for data in sets])
    head = fit_class_head(feats, labels, len(names), c)
    counts = np.bincount(labels, minlength=len(names))
    meta = {"model": str(model), "model_sha256": fx.digest, "features": recipe(), "classes": names,
            "samples": [Path(f).name for f in files], "samples_made_with": [_synthesis_settings(f) for f in files],
            "per_class": int(counts.min()), "c": float(c),
            "accuracy_on_samples": round(float((posterior(feats, head).argmax(1) == labels).mean()), 4)}
    return save_head(head, meta, output or Path(fx.model.path) / HEAD_FILE), meta


def _synthesis_settings(samples: str | Path) -> dict | None:
    """The settings ``diffusio synthesize`` recorded in the ``.npz`` (None for another labelled set)."""
    try:
        with np.load(samples, allow_pickle=False) as z:
            made = json.loads(str(z["meta"])) if "meta" in z.files else None
    except (OSError, ValueError, KeyError):
        return None
    keep = ("model", "seed", "steps", "sampler", "guidance", "autoguidance", "guide")
    return {k: made.get(k) for k in keep} if isinstance(made, dict) else None


def save_head(head: np.ndarray, meta: dict, path: str | Path) -> Path:
    from safetensors.numpy import save_file

    from diffusio._io import atomic_path, check_output

    path = check_output(path, suffixes=(".safetensors",), flag="-o")
    with atomic_path(path) as tmp:
        save_file({"head": np.ascontiguousarray(head, np.float32)}, str(tmp),
                  metadata={"format": HEAD_FORMAT, "meta": json.dumps(meta)})
    return path


def shipped_head(fx: DiffusionFeatures, n_classes: int) -> tuple[np.ndarray, dict] | None:
    """The head in the model's folder, if there is one for these exact weights and this feature
    recipe; None otherwise (no file, or a head of other weights: then a bank is drawn instead)."""
    from safetensors import SafetensorError, safe_open

    path = Path(fx.model.path) / HEAD_FILE
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), "np") as fh:
            file_meta = fh.metadata() or {}
            head = fh.get_tensor("head")
        meta = json.loads(file_meta["meta"])
        ok = file_meta.get("format") == HEAD_FORMAT
    except (SafetensorError, OSError, ValueError, KeyError) as err:
        raise UsageError(f"cannot read the class head {path} ({err}); delete it or make it again with "
                         f"diffusio search head {fx.name} --samples SAMPLES.npz") from None
    again = f"make it again with diffusio search head {fx.name} --samples SAMPLES.npz"
    if not ok:
        raise UsageError(f"{path} is not a class head ({file_meta.get('format')!r}); {again}")
    if meta.get("model_sha256") != fx.digest or meta.get("features") != recipe():
        import warnings  # other weights, or an older recipe's head: the index draws a bank instead

        warnings.warn(f"{path} was fitted for other weights or an older feature recipe, so it is not used; "
                      f"a small bank of generated images is drawn instead; {again}", stacklevel=2)
        return None
    if head.shape != (n_classes, fx.block_dim + 1):
        raise UsageError(f"{path} is not a class head of {fx.name} ({n_classes} classes, {fx.block_dim} "
                         f"features); {again}")
    return head, meta
