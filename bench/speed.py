"""End-to-end speed and quality: what a user runs today (diffusers' DDPM/DDIM loops) against ours.

    python bench/speed.py --student runs/fashion-fast --out docs/img/speed.png

Rows, all on the shipped network, label-conditioned (classes in turn), guidance as the model's
default (the distilled student has its guidance baked in and makes one pass per step):
diffusers DDPM 1,000 steps and DDIM 50 steps (the baseline), ours DPM-Solver++(2M) at 20 and 10
NFE, the student at 4, 2 and 1 steps, and the onnxruntime float and int8 backends.
Images/s is measured on 64 images; FD/accuracy on the same 64 (all rows) and on --n images
(every row but the slow 1,000-step baseline).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from samplers import run_peer  # noqa: E402  (bench scripts share the diffusers adapter)

from diffusio.generative import Generator  # noqa: E402
from diffusio.generative.evaluation.classifier import load_classifier  # noqa: E402
from diffusio.generative.data.datasets import load_dataset  # noqa: E402
from diffusio.generative.cheap.export import export_onnx, quantize_int8  # noqa: E402
from diffusio.generative.evaluation.metrics import frechet_distance  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--student", default="fashion-fast", help="distilled student (shipped name or directory)")
    ap.add_argument("--n", type=int, default=256, help="images for the quality columns")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-ddpm1000", action="store_true", help="leave out the slow 1,000-step baseline")
    ap.add_argument("--out", default="speed.png")
    ap.add_argument("--replot", default=None, metavar="LOG", help="only redraw the plot from a run's printed table")
    args = ap.parse_args()
    if args.replot:
        plot(rows_from_log(args.replot), args.out, args.threads)
        return
    torch.set_num_threads(args.threads)

    clf = load_classifier("fashion-mnist")
    test = load_dataset("fashion-mnist", "test")
    rng = np.random.default_rng(0)
    real = clf.features(test.images[rng.choice(len(test), max(args.n, 64), replace=False)])
    floors = {k: frechet_distance(real[:k], clf.features(test.images[rng.choice(len(test), k, replace=False)]))
              for k in (64, args.n)}
    labels_64, labels_n = np.arange(64) % 10, np.arange(args.n) % 10

    def score(images, labels):
        x = images if isinstance(images, np.ndarray) else images.numpy()
        k = len(x)
        return frechet_distance(real[:k], clf.features(x)), float((clf.predict(x) == labels).mean())

    teacher = Generator.load("fashion")
    student = Generator.load(args.student)
    guidance = teacher.defaults["guidance"]
    tmp = Path(tempfile.mkdtemp())
    export_onnx(teacher.model, tmp / "teacher.onnx")
    quantize_int8(tmp / "teacher.onnx", tmp / "teacher-int8.onnx", teacher.model, "fashion-mnist")
    export_onnx(student.model, tmp / "student.onnx")
    quantize_int8(tmp / "student.onnx", tmp / "student-int8.onnx", student.model, "fashion-mnist")
    backends = {"teacher": {"torch": teacher, "onnx": Generator.load("fashion", onnx=tmp / "teacher.onnx"),
                            "int8": Generator.load("fashion", onnx=tmp / "teacher-int8.onnx")},
                "student": {"torch": student, "onnx": Generator.load(args.student, onnx=tmp / "student.onnx"),
                            "int8": Generator.load(args.student, onnx=tmp / "student-int8.onnx")}}
    teacher.generate(label=0, n=4, steps=2, seed=0)  # warm-up
    rows = []

    def ours(name, who, backend, steps, sampler=None):
        gen = backends[who][backend]
        kw = dict(steps=steps, sampler=sampler, seed=0, watermark=False)  # the peers start from plain noise
        start = time.perf_counter()
        made = gen.sample(label=labels_64.tolist(), n=64, **kw)
        images = made.uint8()
        rate = 64 / (time.perf_counter() - start)
        nfe = made.nfe * (2 if who == "teacher" and guidance != 1 else 1)
        fd64, acc64 = score(to_unit(images), labels_64)
        big = gen.generate(label=labels_n.tolist(), n=args.n, **kw)
        fd, acc = score(to_unit(big), labels_n)
        rows.append((name, nfe, rate, fd64, acc64, fd, acc))
        print(*rows[-1], flush=True)

    def peer(name, nfe):
        cond = teacher.condition(64, label=labels_64.tolist())
        start = time.perf_counter()
        images = run_peer(name, teacher, cond, 64, nfe, 0, guidance)
        rate = 64 / (time.perf_counter() - start)
        rows.append((f"diffusers {name} {nfe} steps", 2 * nfe, rate, *score(images, labels_64), None, None))
        print(*rows[-1], flush=True)

    if not args.skip_ddpm1000:
        peer("DDPM", 1000)
    peer("DDIM", 50)
    ours("ours DPM-Solver++(2M) 20 steps", "teacher", "torch", 20)
    ours("ours DPM-Solver++(2M) 10 steps", "teacher", "torch", 10)
    ours("ours DPM-Solver++(2M) 20 steps, onnxruntime", "teacher", "onnx", 20)
    ours("ours DPM-Solver++(2M) 20 steps, onnxruntime int8", "teacher", "int8", 20)
    for steps in (4, 2, 1):
        ours(f"student {steps} steps", "student", "torch", steps)
    ours("student 4 steps, onnxruntime", "student", "onnx", 4)
    ours("student 4 steps, onnxruntime int8", "student", "int8", 4)
    ours("student 1 step, onnxruntime int8", "student", "int8", 1)

    base = rows[0][2]
    print(f"\nFD floor (real vs real): {floors[64]:.2f} at 64 images, {floors[args.n]:.2f} at {args.n}")
    print(f"| method | network passes per image | images/s | speed-up vs {rows[0][0]} | FD (64) | acc (64) "
          f"| FD ({args.n}) | acc ({args.n}) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, nfe, rate, fd64, acc64, fd, acc in rows:
        tail = f"{fd:.2f} | {acc:.3f}" if fd is not None else "- | -"
        print(f"| {name} | {nfe:g} | {rate:.2f} | {rate / base:.0f}x | {fd64:.2f} | {acc64:.3f} | {tail} |")
    plot(rows, args.out, args.threads)
    print(f"plot: {args.out}")


def to_unit(images: np.ndarray) -> np.ndarray:
    """uint8 [N, H, W] -> float NCHW in [-1, 1], as the classifier takes them."""
    return (images.astype(np.float32)[:, None] / 127.5 - 1.0)


def plot(rows, path, threads=1):
    """FD (64 images) against seconds per image, log scale; one marker per row, named in a legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.8), dpi=110)
    markers = "xs^vD<>ph*o+"
    for k, (name, nfe, rate, fd64, acc64, *_) in enumerate(rows):
        ax.scatter(1 / rate, fd64, marker=markers[k % len(markers)], s=45, label=f"{name} (acc {acc64:.2f})")
    ax.set_xscale("log")
    ax.set_xlabel(f"seconds per image ({threads} CPU thread{'s' if threads > 1 else ''}, batch of 64)")
    ax.set_ylabel("FD on 64 images (classifier features)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    fig.savefig(path)


def rows_from_log(path):
    """Rows back from the markdown table a run printed (to redraw the plot without rerunning)."""
    rows = []
    for line in open(path):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 8 and cells[1].replace(".", "").isdigit():
            rows.append((cells[0], float(cells[1]), float(cells[2]), float(cells[4]), float(cells[5])))
    return rows


if __name__ == "__main__":
    main()
