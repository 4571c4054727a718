"""diffusio.molecules on the MOSES benchmark, beside the published rows.

    python bench/molecules.py --model runs/moses-small -n 10000 --out runs/bench/molecules

Rows: a random sample of the MOSES training split scored like a generator (the floor of every
metric at this n and this reference size), then ours.  Every row is scored by the same code
(:func:`diffusio.molecules.metrics.moses_metrics`) against ``--reference-size`` molecules of the
MOSES test split; novelty against the whole training split.  MOSES scores FCD against the full
test set (176k molecules), so compare FCD with the published rows through the floor row, not
directly.  Then property control: the share of generated molecules inside each requested range,
conditioned and unconditioned, and sampling speed.  Prints markdown and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from diffusio.molecules import MoleculeDiffusion, load_moses
from diffusio.molecules.files import resolve_model
from diffusio.molecules.sampling import SAMPLERS
from diffusio.molecules.metrics import chemnet_stats, moses_metrics
from diffusio.molecules.properties import parse_condition

# molecularsets/moses README.md (HEAD dd7ed6a, 2023-06-22), means of 3 runs; DiGress: Vignac et al.
# 2023, MOSES table (read from secondary copies; the paper reports no Frag, IntDiv or unique@1k there).
PUBLISHED = {
    "CharRNN": {"valid": 0.9748, "unique@1000": 1.0, "unique@10000": 0.9994, "FCD": 0.0732, "SNN": 0.6015,
                "Frag": 0.9998, "Scaf": 0.9242, "IntDiv": 0.8562, "Filters": 0.9943, "novelty": 0.8419},
    "VAE": {"valid": 0.9767, "unique@1000": 1.0, "unique@10000": 0.9984, "FCD": 0.099, "SNN": 0.6257,
            "Frag": 0.9994, "Scaf": 0.9386, "IntDiv": 0.8558, "Filters": 0.997, "novelty": 0.6949},
    "AAE": {"valid": 0.9368, "unique@1000": 1.0, "unique@10000": 0.9973, "FCD": 0.5555, "SNN": 0.6081,
            "Frag": 0.991, "Scaf": 0.9022, "IntDiv": 0.8557, "Filters": 0.996, "novelty": 0.7931},
    "JTN-VAE": {"valid": 1.0, "unique@1000": 1.0, "unique@10000": 0.9996, "FCD": 0.3954, "SNN": 0.5477,
                "Frag": 0.9965, "Scaf": 0.8964, "IntDiv": 0.8551, "Filters": 0.976, "novelty": 0.9143},
    "LatentGAN": {"valid": 0.8966, "unique@1000": 1.0, "unique@10000": 0.9968, "FCD": 0.2968, "SNN": 0.5371,
                  "Frag": 0.9986, "Scaf": 0.8867, "IntDiv": 0.8565, "Filters": 0.9735, "novelty": 0.9498},
    "DiGress": {"valid": 0.857, "unique@10000": 1.0, "FCD": 1.19, "SNN": 0.52, "Scaf": 0.148, "Filters": 0.971,
                "novelty": 0.95},
}
COLUMNS = ["valid", "unique@1000", "unique@10000", "novelty", "FCD", "SNN", "Frag", "Scaf", "IntDiv", "Filters"]
CONDITIONS = ["qed>0.8", "logp<2", "250<weight<300"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="run folder or shipped model (default moses-small)")
    ap.add_argument("-n", type=int, default=10_000)
    ap.add_argument("--reference-size", type=int, default=10_000)
    ap.add_argument("--per-condition", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/bench/molecules")
    ap.add_argument("--bf16", choices=("off", "on", "both"), default="both",
                    help="sample in float32, bfloat16 or both (two rows, each timed)")
    ap.add_argument("--sampler", choices=(*SAMPLERS, "all"), default=None,
                    help="sampler (diffusio.molecules.sampling; default: the model's); all: a row each")
    args = ap.parse_args()
    model = MoleculeDiffusion.load(resolve_model(args.model))
    reference = load_moses("test", limit=args.reference_size, seed=args.seed)
    stats = chemnet_stats(reference)
    train = set(load_moses("train"))
    rows = {"MOSES train sample (floor)": moses_metrics(load_moses("train", limit=args.n, seed=args.seed + 1),
                                                        reference, train, reference_stats=stats)}
    speeds = {}
    samplers = tuple(SAMPLERS) if args.sampler == "all" else (args.sampler or model.sampler,)
    for sampler in samplers:
        for bf16 in (("off", "on") if args.bf16 == "both" else (args.bf16,)):
            model.sample(100, seed=args.seed + 1, bf16=bf16, sampler=sampler)  # warm-up: oneDNN picks its kernels
            t0 = time.perf_counter()
            generated = model.sample(args.n, seed=args.seed, bf16=bf16, sampler=sampler)
            name = f"diffusio (ours, {sampler}{', bf16' if bf16 == 'on' else ''})"
            speeds[name] = args.n / (time.perf_counter() - t0)
            rows[name] = moses_metrics(generated.smiles.tolist(), reference, train, reference_stats=stats)
    control = []
    plain = model.sample(args.per_condition, seed=args.seed + 7, sampler=samplers[0])
    for text in CONDITIONS:
        name, lo, hi = parse_condition(text)
        cond = model.sample(args.per_condition, seed=args.seed + 7, condition=text, sampler=samplers[0])
        control.append({"condition": text, "unconditioned": float(plain[name].between(lo, hi).mean()),
                        "conditioned": float(cond[name].between(lo, hi).mean()),
                        "conditioned_valid_unique": float(cond.smiles.nunique() / len(cond))})
    print(f"model: {args.model or 'moses-small'}, trained {model.run.step:,} steps ({model.run.wall / 60:.0f} min); "
          f"n = {args.n:,}; reference: {len(reference):,} MOSES test molecules; "
          f"{torch.get_num_threads()} threads; sampling " + ", ".join(f"{k}: {v:.1f} molecules/s" for k, v in speeds.items()))
    print("| model | " + " | ".join(COLUMNS) + " |\n|---|" + "---|" * len(COLUMNS))
    for name, m in {**rows, **{f"{k} (published)": v for k, v in PUBLISHED.items()}}.items():
        print(f"| {name} | " + " | ".join(f"{m[c]:.4g}" if c in m else "-" for c in COLUMNS) + " |")
    print("\n| condition | in range, unconditioned | in range, conditioned | distinct |\n|---|---|---|---|")
    for c in control:
        print(f"| {c['condition']} | {c['unconditioned']:.1%} | {c['conditioned']:.1%} | "
              f"{c['conditioned_valid_unique']:.1%} |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"rows": rows, "control": control, "speed": speeds,
                                                     "steps": model.run.step, "minutes": model.run.wall / 60},
                                                    indent=1, default=float))


if __name__ == "__main__":
    main()
