"""Audits of a trained model: does it copy its training images, and is its output biased?

Memorisation compares every sample with its nearest training images, in pixel space and in the
evaluation classifier's feature space, by two published criteria:

* Gu et al. (2023), "On memorization in diffusion models": a sample is a copy when the distance
  to its nearest training image is under 1/3 of the distance to the second nearest;
* Carlini et al. (2023), "Extracting training data from diffusion models" (their CIFAR-10
  criterion, in spirit): the distance to the nearest training image, divided by the mean
  distance to the 50 nearest, is under 1/3.

The same criteria run on real *test* images as a control: they were never trained on, so the share
flagged there (near-duplicates between the splits) is the false-positive floor.

Bias compares the class mix of unconditional samples with the training mix (chi-square), and
shows which prompts the model confuses; ``balance=True`` steers the mix toward a target
distribution by drawing a class per image and conditioning on it (guidance 1: the plain
conditional model, no amplification).

>>> report = memorization_audit("fashion", n=200)          # doctest: +SKIP
>>> report["pixel"]["gu_fraction"]                          # doctest: +SKIP
0.0
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats

from diffusio.errors import UsageError
from diffusio.generative.evaluation.classifier import load_classifier
from diffusio.generative.data.datasets import load_dataset, to_uint8
from diffusio.generative.pipeline import Generator

GU_RATIO = 1 / 3
CARLINI_NEIGHBOURS = 50
CARLINI_DELTA = 1 / 3


def nearest(queries: np.ndarray, refs: np.ndarray, k: int, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances to, and indices of, the ``k`` nearest rows of ``refs`` for every query."""
    q = torch.from_numpy(np.ascontiguousarray(queries.reshape(len(queries), -1), np.float32))
    r = torch.from_numpy(np.ascontiguousarray(refs.reshape(len(refs), -1), np.float32))
    r2 = (r * r).sum(1)
    dist, index = [], []
    for start in range(0, len(q), chunk):
        block = q[start:start + chunk]
        d2 = ((block * block).sum(1, keepdim=True) - 2 * block @ r.T + r2).clamp_min(0)
        d, i = torch.topk(d2, k, dim=1, largest=False)
        dist.append(d.sqrt().numpy())
        index.append(i.numpy())
    return np.concatenate(dist), np.concatenate(index)


def copy_criteria(queries: np.ndarray, refs: np.ndarray) -> dict:
    """Per query: nearest distance, nearest index, Gu ratio d1/d2 and Carlini ratio d1/mean(d1..d50)."""
    k = min(CARLINI_NEIGHBOURS, len(refs))
    d, i = nearest(queries, refs, k)
    gu = d[:, 0] / np.maximum(d[:, 1], 1e-12)
    carlini = d[:, 0] / np.maximum(d.mean(1), 1e-12)
    return {"distance": d[:, 0], "index": i[:, 0], "gu": gu, "carlini": carlini}


def _summary(c: dict) -> dict:
    return {"gu_fraction": float((c["gu"] < GU_RATIO).mean()),
            "carlini_fraction": float((c["carlini"] < CARLINI_DELTA).mean()),
            "median_nearest_distance": float(np.median(c["distance"])),
            "median_gu_ratio": float(np.median(c["gu"]))}


def _samples(gen: Generator, n: int, seed: int, labels: np.ndarray | None, **sampling) -> np.ndarray:
    kw = {k: v for k, v in sampling.items() if v is not None}
    if labels is not None:
        return gen.sample(n=n, label=labels.tolist(), seed=seed, **kw).images.numpy()
    return gen.sample(n=n, seed=seed, **kw).images.numpy()


def memorization_audit(model: str, n: int = 1000, *, seed: int = 0, steps: int | None = None,
                       guidance: float | None = None, pairs: int = 8) -> dict:
    """Nearest-training-image audit of ``n`` samples (class mix as in training) and ``n`` test images."""
    if n < 2:
        raise UsageError(f"n must be at least 2, got {n}")
    gen = Generator.load(model)
    dataset = gen.model.config.get("data", {}).get("name")
    train, test = load_dataset(dataset, "train"), load_dataset(dataset, "test")
    clf = load_classifier(dataset)
    rng = np.random.default_rng(seed)
    labels = rng.choice(train.labels, n) if gen.model.class_embeddings is not None else None
    fake = _samples(gen, n, seed, labels, steps=steps, guidance=guidance)
    control = test.images[rng.choice(len(test), min(n, len(test)), replace=False)]
    train_feats = clf.features(train.images)
    report = {"model": str(model), "dataset": dataset, "n": n, "training_images": len(train),
              "criteria": {"gu_ratio": GU_RATIO, "carlini_neighbours": CARLINI_NEIGHBOURS,
                           "carlini_delta": CARLINI_DELTA}}
    closest = None
    for space, refs, query, control_query in (
            ("pixel", train.images, fake, control),
            ("features", train_feats, clf.features(fake), clf.features(control))):
        found = copy_criteria(query, refs)
        report[space] = _summary(found)
        report[space + "_test_control"] = _summary(copy_criteria(control_query, refs))
        if space == "pixel":
            closest = found
    order = np.argsort(closest["gu"])[:pairs]
    report["closest_pairs"] = [{"sample": int(j), "train_index": int(closest["index"][j]),
                                "distance": float(closest["distance"][j]), "gu_ratio": float(closest["gu"][j])}
                               for j in order]
    report["_pictures"] = (fake[order], train.images[closest["index"][order]])
    return report


def bias_audit(model: str, n: int = 1000, *, seed: int = 0, steps: int | None = None, per_prompt: int = 50,
               balance: bool = False, target: np.ndarray | None = None) -> dict:
    """Class mix of unconditional samples against the training mix, and the prompt confusion matrix."""
    from diffusio.generative.evaluation.evaluate import class_prompts

    gen = Generator.load(model)
    if gen.class_names is None:
        raise UsageError("a bias audit needs a model trained with classes")
    if gen.model.cond_kind == "text":  # before any sampling: a prompt per class, per_prompt images each
        gen.check_room(len(gen.class_names) * per_prompt, f"per_prompt={per_prompt}", "ask for fewer images per prompt")
    dataset = gen.model.config.get("data", {}).get("name")
    train = load_dataset(dataset, "train")
    clf = load_classifier(dataset)
    k = len(clf.class_names)
    train_mix = np.bincount(train.labels, minlength=k) / len(train)
    target = train_mix if target is None else np.asarray(target, float) / np.sum(target)
    if balance:
        target = np.full(k, 1 / k) if target is train_mix else target
        # a class per image, in the target proportions, and the plain conditional model (guidance 1, and
        # no redraws: their filter would hide the model's own mix)
        counts = np.floor(target * n).astype(int)
        counts[: n - counts.sum()] += 1
        labels = np.repeat(np.arange(k), counts)
        images = gen.sample(n=n, label=labels.tolist(), seed=seed, guidance=1.0, steps=steps, redraws=0).images.numpy()
    else:
        images = gen.sample(n=n, seed=seed, guidance=0.0, steps=steps).images.numpy()  # the null condition
    observed = np.bincount(clf.predict(images), minlength=k)
    chi2, p = stats.chisquare(observed, target * n)
    report = {"model": str(model), "n": n, "balance": balance, "classes": clf.class_names,
              "sample_mix": (observed / n).tolist(), "target_mix": target.tolist(),  # exact: shares sum to 1
              "training_mix": train_mix.tolist(), "chi2": float(chi2), "p_value": float(p)}
    if gen.model.cond_kind == "text":
        prompts = class_prompts(gen.class_names)
        texts = [p for p in prompts for _ in range(per_prompt)]
        predicted = clf.predict(gen.sample(texts, len(texts), seed=seed, steps=steps).images.numpy())
        names = [c.lower() for c in clf.class_names]
        confusion = np.zeros((len(prompts), k), int)
        for row, target_name in enumerate(prompts.values()):
            confusion[row] = np.bincount(predicted[row * per_prompt:(row + 1) * per_prompt], minlength=k)
        report["prompts"] = list(prompts)
        report["prompt_accuracy"] = {p: float(confusion[r, names.index(t.lower())] / per_prompt)
                                     for r, (p, t) in enumerate(prompts.items())}
        report["confusion"] = confusion.tolist()
    return report


def save_pairs_picture(report: dict, path) -> None:
    """Closest pairs: samples on the top row, their nearest training images below."""
    from diffusio.generative.data.images import save_images

    fake, real = report["_pictures"]
    save_images(np.concatenate([to_uint8(fake), to_uint8(real)]), path, ncol=len(fake), scale=3)


def save_confusion_picture(report: dict, path) -> None:
    from diffusio.figures import figure, save

    confusion = np.array(report["confusion"])
    with figure(7.5, 6) as (fig, ax):
        ax.imshow(confusion, cmap="Blues")
        ax.set_xticks(range(len(report["classes"])), report["classes"], rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(len(report["prompts"])), report["prompts"], fontsize=7)
        for (r, c), v in np.ndenumerate(confusion):
            if v:
                ax.text(c, r, str(v), ha="center", va="center", fontsize=6)
        ax.set_xlabel("class the classifier sees")
        ax.set_title("prompt -> predicted class")
        save(fig, path)
