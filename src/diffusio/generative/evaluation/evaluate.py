"""Evaluate a model against the real test set, with the real-vs-real floor beside every number.

Features come from the small classifier diffusio ships for the model's dataset
(:mod:`diffusio.generative.evaluation.classifier`).  For conditional models, the same
classifier judges whether each sample shows the class it was asked for, per
class prompt and per free-text paraphrase.

>>> report = evaluate("fashion", n=200, steps=10)          # doctest: +SKIP
>>> sorted(report["model"])                                 # doctest: +SKIP
['fd', 'kid', 'precision', 'recall']
"""

from __future__ import annotations

import numpy as np

from diffusio.errors import UsageError
from diffusio.generative.conditioning.captions import FASHION_PROMPTS, _article
from diffusio.generative.evaluation.classifier import load_classifier
from diffusio.generative.data.datasets import load_dataset
from diffusio.generative.evaluation.metrics import feature_metrics
from diffusio.generative.pipeline import Generator

# Free-text prompts that appear in no training caption, with the class each should reach.
FASHION_PARAPHRASES: dict[str, str] = {
    "running shoes": "Sneaker",
    "a handbag": "Bag",
    "winter coat": "Coat",
    "jeans": "Trouser",
    "a leather ankle boot": "Ankle boot",
    "an evening dress": "Dress",
    "a cosy knit sweater": "Pullover",
    "beach sandals": "Sandal",
    "a plain white tee": "T-shirt/top",
    "a formal shirt with buttons": "Shirt",
}


def class_prompts(class_names: list[str]) -> dict[str, str]:
    """The canonical prompt per class (a training caption): 'a photo of a <class>'."""
    out = {}
    for name in class_names:
        if name in FASHION_PROMPTS:
            out[FASHION_PROMPTS[name]] = name
        else:
            word = name.split("/")[0].lower()
            out[f"a photo of {_article(word)} {word}"] = name
    return out


def evaluation_draws(n_test: int, train_labels: np.ndarray, n: int, seed: int, conditional: bool):
    """What :func:`evaluate` draws from ``seed``: the test images to compare with, the labels to ask a
    conditional model for (training proportions; None otherwise) and the training images of the
    floor.  A bench that samples a model its own way uses these to score on the same draws."""
    rng = np.random.default_rng(seed)
    ref_idx = rng.choice(n_test, min(n, n_test), replace=False)
    labels = rng.choice(train_labels, n) if conditional else None
    return ref_idx, labels, rng.choice(len(train_labels), n, replace=False)


def _classifier_classes(model_names: list[str], clf_names: list[str]) -> list[int]:
    """The classifier's index of each of the model's classes: by name, or by position for a model
    whose classes are only numbered (a class-conditional diffusers UNet knows labels 0..K-1)."""
    lower = [c.lower() for c in clf_names]
    if all(name.lower() in lower for name in model_names):
        return [lower.index(name.lower()) for name in model_names]
    if [str(i) for i in range(len(model_names))] == list(model_names) and len(model_names) == len(clf_names):
        return list(range(len(model_names)))
    raise UsageError(f"the model's classes {model_names} are not the classifier's {clf_names}: evaluate a model "
                     "against the data it was trained on")


def prompt_accuracy(gen: Generator, clf, prompts: dict[str, str], per_prompt: int, seed: int,
                    **sampling) -> dict[str, float]:
    """Fraction of samples per prompt that the classifier assigns to the expected class."""
    names = [n.lower() for n in clf.class_names]
    gen.check_room(len(prompts) * per_prompt, f"per_prompt={per_prompt}", "ask for fewer images per prompt")
    texts = [p for p in prompts for _ in range(per_prompt)]
    images = gen.sample(texts, len(texts), seed=seed, **sampling).images.numpy()
    predicted = clf.predict(images)
    out = {}
    for i, (prompt, target) in enumerate(prompts.items()):
        block = predicted[i * per_prompt:(i + 1) * per_prompt]
        out[prompt] = float((block == names.index(target.lower())).mean())
    return out


def evaluate(model: str, n: int = 1000, *, steps: int | None = None, sampler: str | None = None,
             guidance: float | None = None, guidance_interval: tuple[float, float] | None = None,
             seed: int = 0, per_prompt: int = 100, k: int = 3,
             paraphrases: dict[str, str] | None = None, progress: bool = False, attr_per_cell: int = 8,
             data: str | None = None, autoguidance: float | None = None, guide: str | None = None,
             autoguidance_interval: tuple[float, float] | None = None, bf16: str | None = None,
             classifier_guidance: float | None = None,
             redraws: int | None = None, redraw_below: dict[str, float] | None = None,
             nudges: list[float] | None = None) -> dict:
    """Metrics of ``n`` samples against the test set, and of ``n`` real training images (the floor).
    ``data``: the dataset to compare with, for a model that does not name the one it was trained on
    (a diffusers folder); by default the model's own.  ``per_prompt``: images per prompt of a text
    model's prompt checks (0 skips them)."""
    if n < k + 2:
        raise UsageError(f"n must be at least {k + 2} for k={k} precision/recall, got {n}")
    if isinstance(per_prompt, bool) or not isinstance(per_prompt, int) or per_prompt < 0:
        raise UsageError(f"per_prompt must be an integer >= 0 (0 skips the prompt checks), got {per_prompt!r}")
    gen = Generator.load(model)
    dataset = data or gen.model.config.get("data", {}).get("name")
    if not dataset:
        raise UsageError(f"{model} does not say which dataset it was trained on; name it with data, "
                         "e.g. data='fashion-mnist'")
    clf = load_classifier(dataset)
    test, train = load_dataset(dataset, "test"), load_dataset(dataset, "train")
    if tuple(gen.model.image_shape) != tuple(test.images.shape[1:]):
        raise UsageError(f"{model} makes images of shape {tuple(gen.model.image_shape)}, {dataset} has "
                         f"{tuple(test.images.shape[1:])}: compare a model with the data it was trained on")
    conditional = gen.model.class_embeddings is not None
    ref_idx, labels, floor_idx = evaluation_draws(len(test), train.labels, n, seed, conditional)
    real_feats = clf.features(test.images[ref_idx])
    sampling = dict(steps=steps, sampler=sampler, guidance=guidance, guidance_interval=guidance_interval,
                    autoguidance=autoguidance, guide=guide, autoguidance_interval=autoguidance_interval, bf16=bf16,
                    classifier_guidance=classifier_guidance,
                    redraws=redraws, redraw_below=redraw_below, nudges=nudges)
    if conditional:  # classes in the training proportions, requested by label
        clf_class = np.array(_classifier_classes(gen.class_names, clf.class_names))
        made = gen.sample(n=n, label=labels.tolist(), seed=seed, progress=progress, **sampling)
    else:
        made = gen.sample(n=n, seed=seed, progress=progress, **sampling)
    fake = made.images.numpy()
    floor_imgs = train.images[floor_idx]
    report = {
        "model": feature_metrics(real_feats, clf.features(fake), k, seed),
        "real_floor": feature_metrics(real_feats, clf.features(floor_imgs), k, seed),
        "n": n, "dataset": dataset, "classifier_test_accuracy": clf.test_accuracy,
        "sampling": {**gen.defaults, **{key: v for key, v in sampling.items() if v is not None},
                     "redraw_below": {**gen.defaults.get("redraw_below", {}), **(redraw_below or {})}},
        "unnamed": made.unnamed,  # samples the class guide still did not name after the last redraw
    }
    if conditional:
        want = clf_class[labels]
        report["label_accuracy"] = float((clf.predict(fake) == want).mean())
        report["real_label_accuracy"] = float((clf.predict(floor_imgs) == train.labels[floor_idx]).mean())
    if gen.model.cond_kind == "text" and per_prompt:
        report["class_prompts"] = prompt_accuracy(gen, clf, class_prompts(gen.class_names), per_prompt, seed, **sampling)
        if paraphrases is None and dataset == "fashion-mnist":
            paraphrases = FASHION_PARAPHRASES
        if paraphrases:
            report["paraphrases"] = prompt_accuracy(gen, clf, paraphrases, per_prompt, seed + 1, **sampling)
    if gen.model.attributes is not None:
        from diffusio.generative.conditioning.attributes import attribute_control

        report["attributes"] = attribute_control(gen, clf, attr_per_cell, seed=seed + 2, **sampling)
    return report
