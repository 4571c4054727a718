"""Editing measured on the real Fashion-MNIST test set with the shipped model, in one run.

* inversion: reconstruction PSNR of 100 test images against the number of steps;
* inpainting: bottom half masked, prompt-free; how often the shipped classifier still recognises
  the original class, and how far the fill is from the masked-out truth;
* denoising: PSNR at sigma 0.1, 0.2, 0.4 ([0, 1] units) on 200 test images, ours (MMSE, 1 NFE)
  beside scikit-image's non-local means (sigma given to both).

    pip install scikit-image==0.26.0   # the baseline; not a test dependency
    python bench/editing.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from diffusio.generative import Generator
from diffusio.generative.classifier import load_classifier
from diffusio.generative.data import load_dataset
from diffusio.generative.editing import denoise, inpaint, invert, reconstruct


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image PSNR of images in [-1, 1] (peak-to-peak 2)."""
    mse = ((a - b) ** 2).reshape(len(a), -1).mean(1)
    return 10 * np.log10(4.0 / np.maximum(mse, 1e-12))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-invert", type=int, default=100)
    ap.add_argument("--n-inpaint", type=int, default=100)
    ap.add_argument("--n-denoise", type=int, default=200)
    args = ap.parse_args()
    torch.set_num_threads(2)
    gen = Generator.load("fashion")
    clf = load_classifier("fashion-mnist")
    test = load_dataset("fashion-mnist", "test")
    rng = np.random.default_rng(0)

    x = torch.from_numpy(test.images[rng.choice(len(test), args.n_invert, replace=False)])
    print("| inversion steps | PSNR mean (dB) | PSNR median | seconds |")
    print("|---|---|---|---|")
    for steps in (10, 20, 50, 100):
        start = time.perf_counter()
        back = reconstruct(gen, invert(gen, x, steps=steps), steps=steps).numpy()
        p = psnr(back, x.numpy())
        print(f"| {steps} | {p.mean():.2f} | {np.median(p):.2f} | {time.perf_counter() - start:.1f} |", flush=True)

    idx = rng.choice(len(test), args.n_inpaint, replace=False)
    x, y = torch.from_numpy(test.images[idx]), test.labels[idx]
    mask = np.zeros((28, 28), np.float32)
    mask[14:] = 1
    start = time.perf_counter()
    out, nfe = inpaint(gen, x, mask, steps=25, resample=4, seed=0)
    acc = float((clf.predict(out.numpy()) == y).mean())
    real_acc = float((clf.predict(x.numpy()) == y).mean())
    diff = np.abs(out.numpy()[..., 14:, :] - x.numpy()[..., 14:, :]).mean()
    print(f"\ninpainting (bottom half, no prompt, 25 steps x 4 resamples = {nfe} NFE, "
          f"{time.perf_counter() - start:.0f} s for {len(x)} images):")
    print(f"  classifier recognises the original class: {acc:.1%} (same classifier on the unmasked originals: "
          f"{real_acc:.1%})")
    print(f"  mean |fill - truth| in the masked half: {diff:.3f} (on a [-1, 1] scale; 0 would be a copy)")

    from skimage.restoration import denoise_nl_means

    idx = rng.choice(len(test), args.n_denoise, replace=False)
    clean = test.images[idx]
    print("\n| sigma ([0,1]) | noisy PSNR | diffusio MMSE PSNR | scikit-image NLM PSNR | diffusio s | NLM s |")
    print("|---|---|---|---|---|---|")
    for s in (0.1, 0.2, 0.4):
        noisy = clean + rng.normal(size=clean.shape).astype(np.float32) * 2 * s
        t0 = time.perf_counter()
        ours = denoise(gen, noisy, 2 * s).numpy()
        t1 = time.perf_counter()
        nlm = np.stack([denoise_nl_means((im[0] + 1) / 2, h=0.8 * s, sigma=s, patch_size=5, patch_distance=6,
                                         fast_mode=True)[None] * 2 - 1 for im in noisy])
        t2 = time.perf_counter()
        print(f"| {s} | {psnr(noisy.clip(-1, 1), clean).mean():.2f} | {psnr(ours, clean).mean():.2f} | "
              f"{psnr(nlm.clip(-1, 1), clean).mean():.2f} | {t1 - t0:.2f} | {t2 - t1:.2f} |", flush=True)


if __name__ == "__main__":
    main()
