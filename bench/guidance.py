"""The guidance trade-off: diversity (FD, recall) against prompt fidelity, per guidance setting.

    python bench/guidance.py --model fashion -n 1000 --per-prompt 50 \
        --settings 7 3 2 1.5 3@0.3-3 5@0.3-3 ...

Each setting is ``W`` (classifier-free guidance at every noise level) or ``W@LO-HI`` (guidance
only where LO < sigma <= HI, Kynkaanniemi et al. 2024; plain conditional sampling elsewhere),
optionally followed by ``+agA``: autoguidance at scale A from ``--guide`` (Karras et al. 2024;
``1+ag2`` is autoguidance alone).  Without ``+ag`` a setting has no autoguidance, whatever the
model's default.
For each: ``-n`` label-conditioned samples (classes in turn) scored against as many test images
on the shipped classifier's features (FD, KID, precision, recall), the class accuracy of those
samples, and ``--per-prompt`` samples of each class prompt and each held-out paraphrase
(evaluate's sets) scored by the classifier.  The real-vs-real floor at the same n is the first
row.  Prints a markdown table and writes it as CSV beside ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
import torch

from diffusio.generative import Generator
from diffusio.generative.evaluation.classifier import load_classifier
from diffusio.generative.data.datasets import load_dataset
from diffusio.generative.evaluation.evaluate import FASHION_PARAPHRASES, class_prompts, prompt_accuracy
from diffusio.generative.evaluation.metrics import feature_metrics


def parse_setting(text: str) -> tuple[float, tuple[float, float] | None, float]:
    """``W[@LO-HI][+agA]`` -> (guidance, interval or None, autoguidance scale)."""
    text, _, auto = text.partition("+ag")
    if "@" not in text:
        return float(text), None, float(auto or 1.0)
    scale, span = text.split("@")
    lo, hi = span.split("-")
    return float(scale), (float(lo), float(hi)), float(auto or 1.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="fashion")
    ap.add_argument("-n", type=int, default=1000, help="label-conditioned samples per setting")
    ap.add_argument("--per-prompt", type=int, default=50)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--settings", nargs="+", default=["7", "3", "2", "3@0.3-3"])
    ap.add_argument("--out", default="runs/bench/guidance.csv")
    ap.add_argument("--guide", default="fashion-guide", help="the weaker model of the +ag settings")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    gen = Generator.load(args.model)
    clf = load_classifier("fashion-mnist")
    test, train = load_dataset("fashion-mnist", "test"), load_dataset("fashion-mnist")
    rng = np.random.default_rng(args.seed)
    real = clf.features(test.images[rng.choice(len(test), args.n, replace=False)])
    floor = feature_metrics(real, clf.features(train.images[rng.choice(len(train), args.n, replace=False)]),
                            seed=args.seed)
    labels = np.arange(args.n) % len(gen.class_names)
    names = [c.lower() for c in clf.class_names]
    want = np.array([names.index(gen.class_names[i].lower()) for i in labels])
    rows = [{"setting": "real vs real", **floor}]
    print(f"floor at n={args.n}: " + ", ".join(f"{k} {v:.3f}" for k, v in floor.items()), flush=True)
    for text in args.settings:
        scale, interval, auto = parse_setting(text)
        sampling = dict(steps=args.steps, guidance=scale, guidance_interval=interval or (0, float("inf")),
                        autoguidance=auto, guide=args.guide)
        start = time.perf_counter()
        fake = gen.sample(n=args.n, label=labels.tolist(), seed=args.seed, **sampling).images.numpy()
        predicted = clf.predict(fake)
        per_class = [float((predicted[labels == c] == want[labels == c]).mean()) for c in range(len(names))]
        prompts = prompt_accuracy(gen, clf, class_prompts(gen.class_names), args.per_prompt, args.seed, **sampling)
        para = prompt_accuracy(gen, clf, FASHION_PARAPHRASES, args.per_prompt, args.seed + 1, **sampling)
        shirt_prompt = next((p for p, c in class_prompts(gen.class_names).items() if c == "Shirt"), None)
        row = {"setting": text, **feature_metrics(real, clf.features(fake), seed=args.seed),
               "label_acc": float(np.mean(per_class)), "min_label_acc": min(per_class),
               "prompt_min_non_shirt": min(v for p, v in prompts.items() if p != shirt_prompt),
               "prompt_shirt": prompts.get(shirt_prompt, float("nan")),
               "paraphrase_mean": float(np.mean(list(para.values()))),
               "paraphrase_min": min(para.values()), "seconds": time.perf_counter() - start}
        rows.append(row)
        print(" | ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()),
              flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    keys = list(rows[-1])
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys, restval="")
        w.writeheader()
        w.writerows(rows)
    print("\n| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(f"{r[k]:.3f}" if isinstance(r.get(k), float) else str(r.get(k, "")) for k in keys)
              + " |")


if __name__ == "__main__":
    main()
