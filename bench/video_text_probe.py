"""How well the MiniLM caption embedding itself tells the motions apart: the ceiling of any video
model conditioned on it.

    python bench/video_text_probe.py

Every single-object training caption of ``moving-fashion`` (10 garments x their synonyms x 6
motions x 6 phrasings x 4 templates) and every held-out one (2 phrasings per motion) is embedded
with MiniLM, as ``video train`` embeds them.  Readers trained on the training captions' motion
labels then name the motion of the held-out captions:

* nearest motion centroid, on the raw embedding and on whitened ones (``(e - mean) @ (cov +
  lam * mean eigenvalue)^-1/2``, the whitening proposed in docs/benchmarks-video.md);
* a linear probe (multinomial logistic regression; the best a linear layer on the embedding can do).

A model whose condition is this embedding cannot follow a held-out phrasing that the best linear
reader misreads, so the probe's accuracy bounds the "motion as prompted, held-out phrasings" goal
from above (to the extent a network's first layer is linear in the embedding).  Prints markdown:
accuracy per reader, and the probe's reading of each held-out phrasing.
"""

from __future__ import annotations

import argparse

import numpy as np

import torch

from diffusio.generative.conditioning.text import encode
from diffusio.video.clips import HELD_OUT_PHRASES, MOTION_PHRASES, MOTIONS, all_captions
from diffusio.video.net import CaptionWhitening


def captions(phrases: str) -> tuple[list[str], np.ndarray, list[str]]:
    """Every single-object caption of one phrase table: texts, motion index, and the phrase used."""
    table = HELD_OUT_PHRASES if phrases == "held-out" else MOTION_PHRASES
    texts, motions = all_captions(phrases=phrases)
    # the phrase is the longest of its motion's phrasings that the caption contains
    used = [max((p for p in table[m] if p in t), key=len) for t, m in zip(texts, motions)]
    return texts, np.array([MOTIONS.index(m) for m in motions]), used


def whitener(train: np.ndarray, lam: float):
    """The video model's own whitening (``--whiten-cond``) fitted on ``train``."""
    layer = CaptionWhitening(train.shape[1])
    layer.fit(torch.from_numpy(train), lam)
    return lambda e: layer(torch.from_numpy(e).double()).numpy()


def nearest_centroid(train: np.ndarray, labels: np.ndarray, test: np.ndarray) -> np.ndarray:
    centroids = np.stack([train[labels == k].mean(0) for k in range(len(MOTIONS))])
    return ((test[:, None] - centroids[None]) ** 2).sum(-1).argmin(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lams", default="1,0.1,0.01", help="whitening regularisers to try (each > 0)")
    args = ap.parse_args()
    from sklearn.linear_model import LogisticRegression

    train_texts, y_train, _ = captions("train")
    test_texts, y_test, phrases = captions("held-out")
    e_train, e_test = encode(train_texts), encode(test_texts)
    print(f"# MiniLM reading the motion: {len(train_texts):,} training captions, {len(test_texts):,} held-out\n")
    print("| reader (fitted on training captions) | held-out captions whose motion it names | training captions |"
          "\n|---|---|---|")

    def row(name: str, read) -> None:
        print(f"| {name} | {(read(e_test) == y_test).mean():.3f} | {(read(e_train) == y_train).mean():.3f} |")

    row("nearest centroid, raw embedding", lambda e: nearest_centroid(e_train, y_train, e))
    lams = [float(v) for v in args.lams.split(",")]
    if min(lams) <= 0:
        raise SystemExit(f"--lams must be positive (0 divides by the covariance's zero eigenvalues), got {args.lams}")
    for lam in lams:
        f = whitener(e_train, lam)
        row(f"nearest centroid, whitened (lam {lam:g})", lambda e, f=f: nearest_centroid(f(e_train), y_train, f(e)))
    best = None
    for c in (0.1, 1.0, 10.0, 100.0):
        probe = LogisticRegression(C=c, max_iter=3000).fit(e_train, y_train)
        row(f"linear probe (logistic, C={c:g})", probe.predict)
        pred = probe.predict(e_test)
        acc = (pred == y_test).mean()
        if best is None or acc > best[0]:
            best = (acc, c, pred)
    acc, c, pred = best
    print(f"\nThe best probe (C={c:g}) per held-out phrasing (share of its captions read as each motion):\n")
    print("| motion | held-out phrasing | read as |\n|---|---|---|")
    for m, motion in enumerate(MOTIONS):
        for phrase in HELD_OUT_PHRASES[motion]:
            sel = np.array([p == phrase for p in phrases]) & (y_test == m)
            counts = np.bincount(pred[sel], minlength=len(MOTIONS)) / sel.sum()
            read = ", ".join(f"{MOTIONS[k]} {counts[k]:.2f}" for k in np.argsort(-counts) if counts[k] > 0)
            print(f"| {motion} | {phrase} | {read} |")


if __name__ == "__main__":
    main()
