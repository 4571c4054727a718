"""Watermark: detection rate, false positives and the FD cost, measured on --n images.

    python bench/watermark.py --n 1000 --threads 1

Rows: marked images as saved (PNG, lossless), after JPEG quality 90, after mild Gaussian noise
(std 0.02 of the [0, 1] range, then re-quantised), and the false-positive side: real Fashion-MNIST
test images and unmarked generated images.  Then FD of marked vs unmarked samples (same labels,
two seeds each), so the marking's effect can be read against the seed-to-seed change.  Extra rows (--extra):
other samplers and the distilled student, on fewer images.
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
import torch
from PIL import Image

from diffusio.generative import Generator
from diffusio.generative.classifier import load_classifier
from diffusio.generative.data import load_dataset, to_unit_range
from diffusio.generative.metrics import frechet_distance
from diffusio.generative.watermark import FALSE_ALARM, PATTERNS, THRESHOLD, detect


def unit(pixels: np.ndarray) -> np.ndarray:
    return to_unit_range(pixels[:, None])


def jpeg(pixels: np.ndarray, quality: int = 90) -> np.ndarray:
    out = []
    for im in pixels:
        buf = io.BytesIO()
        Image.fromarray(im).save(buf, format="JPEG", quality=quality)
        buf.seek(0)
        out.append(np.asarray(Image.open(buf).convert("L")))
    return np.stack(out)


def noisy(pixels: np.ndarray, std: float = 0.02, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(np.rint(pixels + rng.normal(0, std * 255, pixels.shape)), 0, 255).astype(np.uint8)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--extra", type=int, default=200, help="images per extra row (0: none)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    gen = Generator.load("fashion")
    labels = (np.arange(args.n) % 10).tolist()
    rows = []

    def rate(name, images, want_marked):
        start = time.perf_counter()
        det = detect(gen, unit(images))
        hit = det.marked.mean() if want_marked else 1 - det.marked.mean()
        rows.append((name, len(images), "detected" if want_marked else "correctly clean", hit,
                     np.median(det.score), det.score.min(), det.score.max(), time.perf_counter() - start))
        print(*rows[-1], flush=True)

    t = time.perf_counter()
    marked = gen.generate(label=labels, n=args.n, seed=0, watermark=True)
    print(f"generated {args.n} marked images in {time.perf_counter() - t:.0f}s", flush=True)
    plain = gen.generate(label=labels, n=args.n, seed=0, watermark=False)
    plain2 = gen.generate(label=labels, n=args.n, seed=1, watermark=False)
    marked2 = gen.generate(label=labels, n=args.n, seed=1, watermark=True)
    real = load_dataset("fashion-mnist", "test")
    real_px = np.clip(np.rint((real.images[: args.n, 0] + 1) * 127.5), 0, 255).astype(np.uint8)

    rate("marked, PNG", marked, True)
    rate("marked, JPEG q90", jpeg(marked), True)
    rate("marked, Gaussian noise std 0.02", noisy(marked), True)
    rate("real test images", real_px, False)
    rate("unmarked generated", plain, False)
    rate("marked with another key", gen.generate(label=labels, n=args.n, seed=2, watermark="another key"), False)

    clf = load_classifier("fashion-mnist")
    ref = clf.features(real.images[-args.n:])
    sets = (("marked (seed 0)", marked), ("marked (seed 1)", marked2),
            ("unmarked (seed 0)", plain), ("unmarked (seed 1)", plain2))
    fd = {name: frechet_distance(ref, clf.features(unit(x))) for name, x in sets}
    acc = {name: float((clf.predict(unit(x)) == np.array(labels)).mean()) for name, x in sets}

    if args.extra:
        lab = (np.arange(args.extra) % 10).tolist()
        for sampler, steps in (("euler", 20), ("unipc", 10), ("ddpm", 50)):
            rate(f"marked, sampler {sampler} {steps} steps", gen.generate(label=lab, n=args.extra, seed=3,
                                                                         sampler=sampler, steps=steps,
                                                                         watermark=True), True)
        student = Generator.load("fashion-fast")
        for steps in (1, 2, 4):
            rate(f"marked, student fashion-fast {steps} steps",
                 student.generate(label=lab, n=args.extra, seed=4, steps=steps, watermark=True), True)

    print(f"\nthreshold: best of {PATTERNS} pattern scores > {THRESHOLD:.2f} (false alarm <= {FALSE_ALARM:g})")
    print("| images | n | rate | what | median score | min | max | detect s |")
    print("|---|---|---|---|---|---|---|---|")
    for name, n, what, r, med, lo, hi, sec in rows:
        print(f"| {name} | {n} | {100 * r:.1f}% | {what} | {med:.1f} | {lo:.1f} | {hi:.1f} | {sec:.0f} |")
    print("\n| samples | FD vs test | class accuracy |")
    print("|---|---|---|")
    for name in fd:
        print(f"| {name} | {fd[name]:.2f} | {acc[name]:.3f} |")
    marked_fd = (fd["marked (seed 0)"] + fd["marked (seed 1)"]) / 2
    plain_fd = (fd["unmarked (seed 0)"] + fd["unmarked (seed 1)"]) / 2
    print(f"\nFD change from marking (mean of two seeds): {100 * (marked_fd / plain_fd - 1):+.1f}%; "
          f"seed-to-seed change without marks: {100 * (fd['unmarked (seed 1)'] / fd['unmarked (seed 0)'] - 1):+.1f}%")


if __name__ == "__main__":
    main()
