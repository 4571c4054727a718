"""Synthetic labelled datasets from a class-conditioned model, with a check of what came out.

>>> from diffusio.generative import Generator
>>> data = synthesize(Generator.load("fashion-fast"), per_class=2, steps=1)   # doctest: +SKIP
>>> data["images"].shape, data["labels"][:4]                                   # doctest: +SKIP
((20, 28, 28), array([0, 0, 1, 1]))
"""

from __future__ import annotations

import io
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from diffusio.errors import UsageError


SHARD = 250  # images per shard: shard k draws from its own seed, so shards can be made anywhere


def shard_seed(seed: int, k: int) -> int:
    """The seed of shard ``k`` of a run with ``seed`` (independent streams, fixed by both)."""
    return int(np.random.SeedSequence([int(seed), int(k)]).generate_state(1, np.uint32)[0])


def _generate_shard(model, labels, steps, sampler, guidance, seed, watermark, autoguidance=None, guide=None,
                    threads=None, classifier_guidance=None, redraws=None, redraw_below=None,
                    autoguidance_interval=None):
    """One shard on a Dask worker; the worker loads the model once.

    ``threads``: torch's thread count in the client's process. The shard runs with it, because a
    different count splits some sums differently and moves the odd pixel by one level (1 of 200,704
    in a test); the worker's own count is put back afterwards."""
    import torch

    with _SHARD_LOCK:  # the thread count is per process: a worker with several task threads runs shards in turn
        own = torch.get_num_threads()
        torch.set_num_threads(int(threads or own))
        try:
            return _worker_generator(str(model)).generate(label=list(labels), n=len(labels), steps=steps,
                                                          sampler=sampler, guidance=guidance, seed=seed,
                                                          watermark=watermark, autoguidance=autoguidance, guide=guide,
                                                          classifier_guidance=classifier_guidance, redraws=redraws,
                                                          redraw_below=redraw_below,
                                                          autoguidance_interval=autoguidance_interval)
        finally:
            torch.set_num_threads(own)


_SHARD_LOCK = threading.Lock()


@lru_cache(maxsize=2)
def _worker_generator(model: str):
    from diffusio.generative import Generator

    return Generator.load(model)


def portable_model(model: str | Path) -> str:
    """How a worker on another machine finds ``model``: a shipped model by its name (the package may be
    installed in another folder there), a run folder by its path (on a file system the workers share)."""
    from diffusio.generative.checkpoint.models import WEIGHTS_DIR

    path = Path(model)
    if path.parent.resolve() == WEIGHTS_DIR.resolve() and (path / "config.json").is_file():
        return path.name
    return str(model)


SETTINGS = ("steps", "sampler", "guidance", "autoguidance", "guide", "classifier_guidance", "redraws", "redraw_below",
            "autoguidance_interval")


def synthesis_settings(gen, **given) -> dict:
    """The sampling settings of a synthetic training set: those given, else the model's ``synthesis``
    block, else (None) its ordinary sampling defaults.  A model may sample training data differently
    from pictures: a classifier learns from the variety of the data more than from prototypes, so
    ``fashion`` synthesises with autoguidance alone (no classifier-free guidance), which measured
    best for classifiers trained on its images (docs/trust.md)."""
    unknown = set(given) - set(SETTINGS)
    if unknown:
        raise UsageError(f"unknown synthesis settings {sorted(unknown)}; known: {', '.join(SETTINGS)}")
    block = gen.model.config.get("synthesis", {})
    return {k: given.get(k) if given.get(k) is not None else block.get(k) for k in SETTINGS}


def synthesize(gen, per_class: int, *, classes=None, steps: int | None = None, sampler: str | None = None,
               guidance: float | None = None, seed: int = 0, watermark: bool | str | None = None,
               progress: bool = False, client=None, autoguidance: float | None = None,
               guide: str | Path | None = None, classifier_guidance: float | None = None,
               redraws: int | None = None, redraw_below: dict[str, float] | None = None,
               autoguidance_interval: tuple[float, float] | str | None = None) -> dict:
    """``per_class`` images of each class (all classes, or the names/indices in ``classes``).

    Returns ``images`` (uint8), ``labels`` (index into the model's classes) and ``class_names``.
    The class mix is uniform by construction; :func:`check` measures what a classifier sees.
    Images are made in shards of :data:`SHARD`, shard ``k`` from :func:`shard_seed` ``(seed, k)``;
    with a Dask ``client`` the shards are made on its workers and the bytes are the same: they load a
    shipped model by its name and a run folder by its path (so it must be on a file system they
    share), and mark with the key resolved here, not with their own $DIFFUSIO_WATERMARK_KEY.
    ``steps``, ``sampler``, ``guidance``, ``autoguidance``, ``guide``, ``autoguidance_interval``,
    ``classifier_guidance``, ``redraws`` and ``redraw_below`` default to the model's :func:`synthesis_settings`.
    """
    chosen = synthesis_settings(gen, steps=steps, sampler=sampler, guidance=guidance, autoguidance=autoguidance,
                                guide=guide, classifier_guidance=classifier_guidance, redraws=redraws,
                                redraw_below=redraw_below, autoguidance_interval=autoguidance_interval)
    steps, sampler, guidance, autoguidance, guide = (chosen[k] for k in SETTINGS[:5])
    classifier_guidance, redraws, redraw_below, autoguidance_interval = (chosen[k] for k in SETTINGS[5:])
    names = gen.class_names
    if gen.model.class_embeddings is None or not names:
        raise UsageError("this model has no classes, so it cannot make a labelled dataset; use a model trained "
                         "on labelled data (e.g. fashion)")
    if per_class < 1:
        raise UsageError(f"--per-class must be >= 1, got {per_class}")
    wanted = list(range(len(names))) if not classes else [gen.label_index(c) for c in classes]
    gen.check_room(len(wanted) * per_class, f"per_class={per_class}", "ask for fewer images per class")
    labels = np.repeat(wanted, per_class)
    shards = [labels[i:i + SHARD] for i in range(0, len(labels), SHARD)]
    if client is not None:
        import torch

        from diffusio.cluster import check_workers, gather
        from diffusio.generative.trust.watermark import resolve_key

        check_workers(client)
        key = resolve_key(watermark)  # here, not on the workers: their $DIFFUSIO_WATERMARK_KEY may differ
        futures = [client.submit(_generate_shard, portable_model(gen.model.path), part.tolist(), steps, sampler,
                                 guidance, shard_seed(seed, k), False if key is None else key, autoguidance,
                                 None if guide is None else portable_model(guide), torch.get_num_threads(),
                                 classifier_guidance, redraws, redraw_below, autoguidance_interval,
                                 pure=False, retries=2)
                   for k, part in enumerate(shards)]
        images = np.concatenate(gather(client, futures, "synthesize on the cluster"))
    else:
        from tqdm.auto import tqdm

        images = np.concatenate([gen.generate(label=part.tolist(), n=len(part), steps=steps, sampler=sampler,
                                              guidance=guidance, seed=shard_seed(seed, k), watermark=watermark,
                                              autoguidance=autoguidance, guide=guide,
                                              classifier_guidance=classifier_guidance, redraws=redraws,
                                              redraw_below=redraw_below, autoguidance_interval=autoguidance_interval)
                                 for k, part in enumerate(tqdm(shards, desc="synthesize", unit="shard",
                                                               disable=not progress))])
    return {"images": images, "labels": labels.astype(np.int64), "class_names": list(names)}


def check(data: dict, classifier) -> dict:
    """How often a classifier agrees with the labels, and the chi-square of its predicted class mix
    against the intended (uniform over the classes made) mix."""
    from scipy.stats import chisquare

    from diffusio.generative.data.datasets import to_unit_range

    x = to_unit_range(data["images"][:, None])
    predicted = classifier.predict(x)
    made = np.unique(data["labels"])
    counts = np.array([(predicted == c).sum() for c in made], dtype=float)  # other predictions are dropped
    expected = np.full(len(made), counts.sum() / len(made))
    chi2, p = chisquare(counts, expected) if len(made) > 1 else (0.0, 1.0)
    return {"label_agreement": float((predicted == data["labels"]).mean()), "chi2_vs_uniform": float(chi2),
            "p_value": float(p), "predicted_mix": (counts / counts.sum()).round(4).tolist()}


def save_npz(path: str | Path, data: dict, meta: dict | None = None) -> Path:
    """Write ``images``, ``labels``, ``class_names`` (and ``meta`` as a JSON string) atomically."""
    import json

    from diffusio._io import atomic_write_bytes

    buf = io.BytesIO()
    np.savez_compressed(buf, images=data["images"], labels=data["labels"],
                        class_names=np.array(data["class_names"], dtype=str), meta=json.dumps(meta or {}))
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)
