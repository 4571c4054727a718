"""Denoising real images: ours beside scikit-image's non-local means, on the same noisy images.

200 Fashion-MNIST test images with Gaussian noise at sigma 0.1, 0.2 and 0.4 ([0, 1] units); PSNR of
diffusio's denoiser (MMSE: one network call at the matching noise level; ODE: the reverse process
from that level) and of non-local means (given the true sigma, as ours is).

    pip install -r requirements-bench.txt   # scikit-image, the baseline
    python bench/denoise.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from editing import psnr  # noqa: E402

from diffusio.generative import Generator  # noqa: E402
from diffusio.generative.data.datasets import load_dataset  # noqa: E402
from diffusio.generative.editing.edits import denoise  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clipped", action="store_true",
                    help="clip the noisy images to the pixel range and round them to 8 bits, as a saved PNG is")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from skimage.restoration import denoise_nl_means

    gen = Generator.load("fashion")
    test = load_dataset("fashion-mnist", "test")
    rng = np.random.default_rng(0)
    clean = test.images[rng.choice(len(test), args.n, replace=False)]
    print("| sigma ([0,1]) | noisy PSNR | diffusio MMSE PSNR | diffusio ODE PSNR | scikit-image NLM PSNR "
          "| MMSE s | ODE s | NLM s |")
    print("|---|---|---|---|---|---|---|---|")
    for s in (0.1, 0.2, 0.4):
        noisy = clean + rng.normal(size=clean.shape).astype(np.float32) * 2 * s
        if args.clipped:
            noisy = np.rint((noisy.clip(-1, 1) + 1) * 127.5).astype(np.float32) / 127.5 - 1
        t0 = time.perf_counter()
        mmse = denoise(gen, noisy, 2 * s).numpy()
        t1 = time.perf_counter()
        ode = denoise(gen, noisy, 2 * s, method="ode").numpy()
        t2 = time.perf_counter()
        nlm = np.stack([denoise_nl_means((im[0] + 1) / 2, h=0.8 * s, sigma=s, patch_size=5, patch_distance=6,
                                         fast_mode=True)[None] * 2 - 1 for im in noisy])
        t3 = time.perf_counter()
        print(f"| {s} | {psnr(noisy.clip(-1, 1), clean).mean():.2f} | {psnr(mmse, clean).mean():.2f} | "
              f"{psnr(ode, clean).mean():.2f} | {psnr(nlm.clip(-1, 1), clean).mean():.2f} | {t1 - t0:.2f} | "
              f"{t2 - t1:.2f} | {t3 - t2:.2f} |", flush=True)


if __name__ == "__main__":
    main()
