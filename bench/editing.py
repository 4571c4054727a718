"""Editing measured on the real Fashion-MNIST test set with the shipped model, in one run.

* inversion: reconstruction PSNR of 100 test images against the number of steps;
* inpainting: bottom half masked, prompt-free, six ways; how often the shipped classifier still recognises
  the original class, and how far the fill is from the masked-out truth.

Denoising against scikit-image is in bench/denoise.py.

    python bench/editing.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from diffusio.generative import Generator
from diffusio.generative.evaluation.classifier import context_classifier, load_classifier
from diffusio.generative.data.datasets import load_dataset
from diffusio.generative.editing.edits import PROBE_DRAWS, PROBE_SIGMAS, infer_class, inpaint, invert, reconstruct


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image PSNR of images in [-1, 1] (peak-to-peak 2)."""
    mse = ((a - b) ** 2).reshape(len(a), -1).mean(1)
    return 10 * np.log10(4.0 / np.maximum(mse, 1e-12))


METHODS = (  # key (for --rows), what the table calls it, inpaint()'s options
    ("repaint", "RePaint, 25 steps x 4 resamples", dict(resample=4)),
    ("repaint-model", "same, conditioned on the class the model names", dict(resample=4, auto_class=True,
                                                                            classifier="model")),
    ("repaint-context", "same, conditioned on the class the context classifier names (CLI default)",
     dict(resample=4, auto_class=True)),
    ("plain", "25 steps x 1, no resampling", dict(resample=1)),
    ("plain-context", "same, conditioned on the class the context classifier names", dict(resample=1, auto_class=True)),
    ("recon", "same, reconstruction guidance 30 (no classes; + a backward pass each)", dict(resample=1, recon=30.0)),
)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-invert", type=int, default=100)
    ap.add_argument("--n-inpaint", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-inversion", action="store_true", help="only the inpainting rows")
    ap.add_argument("--rows", default=",".join(m[0] for m in METHODS),
                    help="inpainting rows to run, comma-separated (default: all): " + ", ".join(m[0] for m in METHODS))
    args = ap.parse_args()
    rows = set(args.rows.split(","))
    unknown = rows - {m[0] for m in METHODS}
    if unknown:
        ap.error(f"unknown --rows {', '.join(sorted(unknown))}; choose from {', '.join(m[0] for m in METHODS)}")
    torch.set_num_threads(args.threads)
    gen = Generator.load("fashion")
    clf = load_classifier("fashion-mnist")
    test = load_dataset("fashion-mnist", "test")
    rng = np.random.default_rng(0)

    x = torch.from_numpy(test.images[rng.choice(len(test), args.n_invert, replace=False)])
    steps_list = [] if args.skip_inversion else (10, 20, 50, 100)
    print("| inversion steps | PSNR mean (dB) | PSNR median | seconds |")
    print("|---|---|---|---|")
    for steps in steps_list:
        start = time.perf_counter()
        back = reconstruct(gen, invert(gen, x, steps=steps), steps=steps).numpy()
        p = psnr(back, x.numpy())
        print(f"| {steps} | {p.mean():.2f} | {np.median(p):.2f} | {time.perf_counter() - start:.1f} |", flush=True)

    idx = rng.choice(len(test), args.n_inpaint, replace=False)
    x, y = torch.from_numpy(test.images[idx]), test.labels[idx]
    mask = np.zeros((28, 28), np.float32)
    mask[14:] = 1
    real_acc = float((clf.predict(x.numpy()) == y).mean())
    print(f"\ninpainting, bottom half masked, no prompt, {len(x)} test images "
          f"(the classifier on the unmasked originals: {real_acc:.1%})")
    namer = context_classifier("fashion-mnist")
    whole = (namer.predict_visible(test.images, mask) == test.labels).mean()
    print(f"the context classifier names the class of the top half of {whole:.1%} of all {len(test)} test images, "
          f"{(namer.predict_visible(x.numpy(), mask) == y).mean():.1%} of these", flush=True)
    if "repaint-model" in rows:
        probe = infer_class(gen, x, mask, sigmas=PROBE_SIGMAS, draws=PROBE_DRAWS)
        print(f"the model's own class probe names {(probe == y).mean():.1%} of these")
    print("| method | NFE per image | original class recognised | mean abs(fill - truth) | seconds |")
    print("|---|---|---|---|---|")
    for key, name, options in METHODS:
        if key not in rows:
            continue
        start = time.perf_counter()
        result = inpaint(gen, x, mask, steps=25, seed=0, **options)
        out, nfe = result.images, result.nfe
        acc = float((clf.predict(out.numpy()) == y).mean())
        diff = np.abs(out.numpy()[..., 14:, :] - x.numpy()[..., 14:, :]).mean()
        print(f"| {name} | {nfe} | {acc:.1%} | {diff:.3f} | {time.perf_counter() - start:.0f} |", flush=True)


if __name__ == "__main__":
    main()
