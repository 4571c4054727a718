"""Watermark: detection rate, false positives and the FD cost, measured on --n images.

    python bench/watermark.py --n 1000 --fd-seeds 6 --threads 1

Rows: marked images as saved (PNG, lossless), after JPEG quality 90, after mild Gaussian noise
(std 0.02 of the [0, 1] range, then re-quantised), and the false-positive side: real Fashion-MNIST
test images and unmarked generated images; each rate at the shipped false-alarm level and at 1e-3.
Then FD of marked vs unmarked samples (same labels) over --fd-seeds seeds each: FD of --n images
moves by a few percent from seed to seed, so the marking's effect is the difference of the two
means with its standard error.  Extra rows (--extra): other samplers and the distilled student.
``--fd-model fashion-fast --fd-steps 1`` takes the FD sets from the one-step student instead (about
5 s per 1,000 images, against 8 minutes), so that many seeds fit in a few minutes.

Generated sets are kept in --cache (one .npy per set), so a killed run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from diffusio.generative import Generator
from diffusio.generative.evaluation.classifier import load_classifier
from diffusio.generative.data.datasets import load_dataset, to_unit_range
from diffusio.generative.data.images import save_images
from diffusio.generative.evaluation.metrics import frechet_distance
from diffusio.generative.trust.watermark import FALSE_ALARM, PATTERNS, THRESHOLD, detect


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
    ap.add_argument("--fd-seeds", type=seed_list, default=range(2),
                    help="seeds of marked and of unmarked samples for FD: a count (6: seeds 0-5) or ranges (0-18,20-24)")
    ap.add_argument("--extra", type=int, default=200, help="images per extra row (0: none)")
    ap.add_argument("--cache", type=Path, default=Path("runs/bench/watermark-sets"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--fd-only", action="store_true", help="only the FD table (no detection rows)")
    ap.add_argument("--fd-model", default="fashion", help="model of the FD sets (e.g. fashion-fast)")
    ap.add_argument("--fd-steps", type=int, default=None, help="sampling steps of the FD sets (default: the model's)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    gen = Generator.load("fashion")
    labels = (np.arange(args.n) % 10).tolist()
    args.cache.mkdir(parents=True, exist_ok=True)
    generated = cached_sets(gen, args.cache, labels)

    real = load_dataset("fashion-mnist", "test")
    if not args.fd_only:
        rows = []

        def rate(name, images, want_marked):
            start = time.perf_counter()
            det = detect(gen, unit(images))
            hits = [det.marked.mean(), (det.p_value < 1e-3).mean()]
            if not want_marked:
                hits = [1 - h for h in hits]
            rows.append((name, len(images), "detected" if want_marked else "correctly clean", *hits,
                         np.median(det.score), det.score.min(), det.score.max(), time.perf_counter() - start))
            print(*rows[-1], flush=True)

        detection_rows(args, gen, labels, real, generated, rate)
        print_detection_table(rows)
    if args.fd_model != "fashion" or args.fd_steps is not None:
        generated = cached_sets(Generator.load(args.fd_model), args.cache, labels, args.fd_steps,
                                prefix=f"{args.fd_model}-steps{args.fd_steps}-")
    fd_table(args, real, generated)


def seed_list(text: str) -> list[int]:
    """"6" -> seeds 0-5; "0-18,20-24" -> those seeds."""
    if text.isdigit():
        return list(range(int(text)))
    try:
        seeds = [s for part in text.split(",") for s in range(int(part.split("-")[0]), int(part.split("-")[-1]) + 1)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give a count (6) or ranges (0-18,20-24)") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"{text!r}: give each seed once")
    return seeds


def cached_sets(gen, cache: Path, labels: list[int], steps: int | None = None, prefix: str = ""):
    """generated(seed, watermark): the images of one seed, from the cache when an earlier run made them."""
    def generated(seed, watermark):
        path = cache / f"{prefix}{'marked' if watermark else 'plain'}-n{len(labels)}-seed{seed}.npy"
        if path.exists():
            return np.load(path)
        t = time.perf_counter()
        images = gen.generate(label=labels, n=len(labels), seed=seed, steps=steps, watermark=watermark)
        save_images(images, path)  # atomic: never a half-written set
        print(f"generated {path.name} in {time.perf_counter() - t:.0f}s", flush=True)
        return images
    return generated



def print_detection_table(rows):
    print(f"\nthreshold: best of {PATTERNS} pattern scores > {THRESHOLD:.2f} (false alarm <= {FALSE_ALARM:g})")
    print(f"| images | n | rate at {FALSE_ALARM:g} | rate at 1e-3 | what | median score | min | max | detect s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, n, what, r, r3, med, lo, hi, sec in rows:
        print(f"| {name} | {n} | {100 * r:.1f}% | {100 * r3:.1f}% | {what} | {med:.1f} | {lo:.1f} | {hi:.1f} | {sec:.0f} |")


def detection_rows(args, gen, labels, real, generated, rate):
    marked = generated(0, True)
    real_px = np.clip(np.rint((real.images[: args.n, 0] + 1) * 127.5), 0, 255).astype(np.uint8)
    rate("marked, PNG", marked, True)
    rate("marked, JPEG q90", jpeg(marked), True)
    rate("marked, Gaussian noise std 0.02", noisy(marked), True)
    rate("real test images", real_px, False)
    rate("unmarked generated", generated(0, False), False)
    rate("marked with another key", gen.generate(label=labels, n=args.n, seed=2, watermark="another key"), False)

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


def fd_table(args, real, generated):
    clf = load_classifier("fashion-mnist")
    ref = clf.features(real.images[-args.n:])
    fd, feats = {True: [], False: []}, {True: [], False: []}
    for seed in args.fd_seeds:
        for watermark in (True, False):
            feats[watermark].append(clf.features(unit(generated(seed, watermark))))
            fd[watermark].append(frechet_distance(ref, feats[watermark][-1]))

    print("\n| seed | FD marked | FD unmarked |")
    print("|---|---|---|")
    for i, seed in enumerate(args.fd_seeds):
        print(f"| {seed} | {fd[True][i]:.2f} | {fd[False][i]:.2f} |")
    a, b = np.array(fd[True]), np.array(fd[False])
    se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)) if len(a) > 1 else float("nan")
    print(f"\nFD marked {a.mean():.2f}, unmarked {b.mean():.2f} (seed-to-seed sd {b.std(ddof=1):.2f}): "
          f"change from marking {100 * (a.mean() / b.mean() - 1):+.1f}% +- {100 * se / b.mean():.1f}% (standard error)")
    if len(args.fd_seeds) >= 4:
        # all sets pooled: the marked and unmarked distributions side by side, against the spread
        # of two halves of the unmarked sets (what sampling alone gives at half the size)
        marked, plain = np.concatenate(feats[True]), np.concatenate(feats[False])
        half = len(plain) // 2
        print(f"pooled ({len(plain)} images each): FD to the test images marked {frechet_distance(ref, marked):.3f}, "
              f"unmarked {frechet_distance(ref, plain):.3f}; FD(marked, unmarked) {frechet_distance(plain, marked):.4f}, "
              f"FD(unmarked first half, second half) {frechet_distance(plain[:half], plain[half:]):.4f}")


if __name__ == "__main__":
    main()
