"""Which sigmas should a distilled student walk?  Each candidate scored on `evaluate`'s draws.

    python bench/student_sigmas.py --model fashion-fast --seeds 1 2 \
        --candidates 80,27.428,7.747,0.658 80,7.747,0.658,0.227

A consistency student jumps to a clean image at each sigma of its schedule and re-noises it to the
next (``sample_consistency``); which sigmas it visits is a sampling choice stored in its config
(``sampling.sigmas``), and ``diffusio distill`` only guesses it (``student_sigmas``: even fractions
of the training grid).  This bench samples the student at each candidate (sigmas without the final
0; use values of the training grid, the only ones it learnt), with its default redraws, on the labels
and test images `diffusio evaluate -n N --seed S` uses, and prints FD / KID / precision / recall /
label accuracy beside the real-vs-real floor.  Choose on seeds other than the one you report
(`evaluate`'s default is seed 0), so the table that ships is not the one the choice was fitted to.
"""

from __future__ import annotations

import argparse
import time

import torch

from diffusio.generative.data.datasets import load_dataset
from diffusio.generative.evaluation.classifier import load_classifier
from diffusio.generative.evaluation.evaluate import evaluation_draws
from diffusio.generative.evaluation.metrics import feature_metrics
from diffusio.generative.pipeline import Generator


def sigmas_arg(text: str) -> list[float]:
    values = [float(s) for s in text.split(",")]
    if any(not v > 0 for v in values) or values != sorted(values, reverse=True):
        raise argparse.ArgumentTypeError(f"sigmas must be > 0 and decreasing, e.g. 80,7.747,0.658,0.227; got {text}")
    return values


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="fashion-fast")
    p.add_argument("--candidates", nargs="+", type=sigmas_arg, required=True, help="comma-separated sigmas, no final 0")
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    p.add_argument("-n", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    gen = Generator.load(args.model)
    if "sigmas" not in gen.defaults:
        raise SystemExit(f"{args.model} is not a distilled student (its config has no sampling.sigmas)")
    data = gen.model.config["data"]["name"]
    clf, test, train = load_classifier(data), load_dataset(data, "test"), load_dataset(data, "train")
    if [c.lower() for c in gen.class_names] != [c.lower() for c in clf.class_names]:
        raise SystemExit(f"{args.model}'s classes are not {data}'s classifier's, in the same order")
    print("| seed | sigmas | FD | KID | precision | recall | label accuracy | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        ref_idx, labels, floor_idx = evaluation_draws(len(test), train.labels, args.n, seed, True)
        real = clf.features(test.images[ref_idx])
        floor = feature_metrics(real, clf.features(train.images[floor_idx]), 3, seed)
        print(f"| {seed} | real vs real (the floor) | {floor['fd']:.3f} | {floor['kid']:.4f} | "
              f"{floor['precision']:.3f} | {floor['recall']:.3f} | | |", flush=True)
        for sigmas in args.candidates:
            steps = str(len(sigmas))
            gen.defaults["sigmas"] = {**gen.defaults["sigmas"], steps: sigmas + [0.0]}
            start = time.perf_counter()
            fake = gen.sample(n=args.n, label=labels.tolist(), seed=seed, steps=len(sigmas)).images.numpy()
            m = feature_metrics(real, clf.features(fake), 3, seed)
            accuracy = float((clf.predict(fake) == labels).mean())
            print(f"| {seed} | {', '.join(f'{s:g}' for s in sigmas)} | {m['fd']:.3f} | {m['kid']:.4f} | "
                  f"{m['precision']:.3f} | {m['recall']:.3f} | {accuracy:.3f} | {time.perf_counter() - start:.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
