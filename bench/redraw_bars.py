"""Which redraw bars, at which autoguidance scale?  Emulated on saved draws, without sampling again.

    python bench/redraw_bars.py --out runs/bars --autoguidance 2 --part first    # evaluate's own first draws
    python bench/redraw_bars.py --out runs/bars --autoguidance 2 --part spares   # (the other core) spare draws
    python bench/redraw_bars.py --out runs/bars --autoguidance 2 --bars '{"Shirt": 0.3}' '{"Shirt": 0.3, "Coat": 0.7}'
    python bench/redraw_bars.py --real --bars '{"Shirt": 0.3}'    # the same rule on real training images
    python bench/redraw_bars.py --out runs/bars --autoguidance 2 --part nudges --nudges 2,4  # then emulate --nudges 2,4

`diffusio evaluate fashion -n 5000` takes about an hour of one core per setting, most of it
sampling.  This bench samples once: ``--part first`` draws exactly the images `evaluate` draws first
(its labels and seed, no redraws), ``--part spares`` a pool of further draws per class (another
seed).  Then, for each bar setting (``--bars``: JSON, class name -> bar; classes left out keep the
model's default bar of 0.8), it replays `Generator.sample`'s redraws: an image the check classifier
gives less than its class's bar is replaced, up to ``--redraws`` times, by the next spare of its
class, keeping the best try (the product's rule).  The spares are other draws of the same
distribution as the product's redraws, so the emulation differs from `evaluate` only by which
random redraws it gets (2026-12-06: 0.793 against `evaluate`'s 0.791 with every bar at 0.8, 0.699
against 0.725 with the shirt's at 0.3).  Printed per setting: FD / KID / precision / recall
against `evaluate`'s test images, the judge's accuracy per class, and draws per image.
``--part nudges --nudges 2,4`` samples the first draws under the (first) ``--bars`` again from
their own start noise with classifier guidance at each scale, as ``Generator.sample(nudges=...)``
does (bit for bit); emulating with ``--nudges`` then takes round r's try from them and later
rounds' from the spares.  ``--real`` puts real training images (seeded draws of each label's class) through the same rule:
what the redraw rule itself costs when the "model" is the data.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from diffusio.generative.conditioning.class_guide import CLEAN_SIGMA, NAMED_AT
from diffusio.generative.data.datasets import load_dataset
from diffusio.generative.evaluation.classifier import load_classifier
from diffusio.generative.evaluation.evaluate import evaluation_draws
from diffusio.generative.evaluation.metrics import feature_metrics
from diffusio.generative.core.sampling import sample
from diffusio.generative.pipeline import CHUNK, Generator, chunk_seed
from diffusio.generative.trust.watermark import marking

SPARES = {"T-shirt/top": 1200, "Pullover": 1200, "Dress": 1000, "Coat": 1200, "Shirt": 1000}  # others: 300
SPARE_SEED = 7


def pool_path(out: Path, part: str, scale: float) -> Path:
    return out / f"{part}_ag{scale:g}.safetensors"


def draw_pool(gen: Generator, part: str, scale: float, n: int, seed: int, out: Path) -> None:
    """Sample one pool (no redraws) and save its images and labels."""
    test, train = load_dataset("fashion-mnist", "test"), load_dataset("fashion-mnist", "train")
    if part == "first":  # what evaluate draws before any redraw: its labels, its seed
        _, labels, _ = evaluation_draws(len(test), train.labels, n, seed, True)
    else:
        labels = np.concatenate([np.full(SPARES.get(name, 300), c) for c, name in enumerate(gen.class_names)])
        seed = SPARE_SEED
    made = gen.sample(n=len(labels), label=labels.tolist(), seed=seed, redraws=0, autoguidance=scale, progress=True)
    out.mkdir(parents=True, exist_ok=True)
    save_file({"images": made.images.contiguous(), "labels": torch.as_tensor(labels)}, pool_path(out, part, scale))


def draw_nudges(gen: Generator, scale: float, n: int, seed: int, out: Path, bars: dict, nudges: list[float]) -> None:
    """The first draws under their bar, sampled again from their own start noise with classifier
    guidance at each of ``nudges``: what round r of ``Generator.sample(nudges=...)`` draws for them."""
    first = load_file(pool_path(out, "first", scale))
    labels = first["labels"].numpy()
    bar = np.array([bars.get(name, NAMED_AT) for name in gen.class_names])
    missed = np.flatnonzero(check_probabilities(gen, first["images"])[np.arange(n), labels] < bar[labels])
    d, image = gen.defaults, gen.model.config["image"]
    mark = marking(None, gen.model.image_shape)
    own = torch.cat([gen._start_noise(min(n, at + CHUNK) - at, chunk_seed(seed, k), mark, None, d["schedule"], d["steps"])
                     for k, at in enumerate(range(0, n, CHUNK))])
    cond = gen.condition(n, None, labels.tolist(), None)
    guide = gen._load_class_guide("nudges")
    rows = torch.as_tensor(missed)
    made = {"rows": rows}
    for w in nudges:
        made[f"w{w:g}"] = sample(gen.denoiser, len(rows), image, cond=cond[rows], steps=d["steps"], sampler=d["sampler"],
                                 guidance=d["guidance"], x=own[rows].clone(), schedule=d["schedule"],
                                 guidance_interval=gen._guidance_interval(None), autoguidance=gen._autoguide(scale, None),
                                 classifier_guidance=(guide.net, guide.wishes(cond)[rows], w)).contiguous()
    save_file(made, pool_path(out, "nudges", scale))


def check_probabilities(gen: Generator, images: torch.Tensor) -> np.ndarray:
    """The class guide's check classifier on finished images, as `Generator.sample`'s redraws read them."""
    guide = gen._load_class_guide("redraw bars")
    out = []
    with torch.no_grad():
        for i in range(0, len(images), 1000):
            x = images[i:i + 1000].float()
            out.append(torch.softmax(guide.check(x, torch.full((len(x),), CLEAN_SIGMA)), dim=1))
    return torch.cat(out).numpy()


def real_pools(labels: np.ndarray, seed: int = 1, spares: int = 1500) -> dict[str, dict[str, torch.Tensor]]:
    """Real training images as pools: one of each label's class per label, and ``spares`` others per class."""
    train = load_dataset("fashion-mnist", "train")
    rng = np.random.default_rng(seed)
    first = np.array([rng.choice(np.flatnonzero(train.labels == c)) for c in labels])
    rest = np.setdiff1d(np.arange(len(train.labels)), first)
    spare = np.concatenate([rng.permutation(rest[train.labels[rest] == c])[:spares] for c in range(10)])
    return {part: {"images": torch.as_tensor(train.images[idx]), "labels": torch.as_tensor(train.labels[idx])}
            for part, idx in (("first", first), ("spares", spare))}


class Pools:
    """The first draws and the spares, read once by the check, the judge and its features."""

    def __init__(self, gen: Generator, out: Path | None, scale: float, n: int, seed: int):
        clf = load_classifier("fashion-mnist")
        test, train = load_dataset("fashion-mnist", "test"), load_dataset("fashion-mnist", "train")
        ref_idx, self.labels, _ = evaluation_draws(len(test), train.labels, n, seed, True)
        self.real = clf.features(test.images[ref_idx])
        self.names = gen.class_names
        self.check, self.features, self.judged, self.pool_labels = {}, {}, {}, {}
        saved_pools = real_pools(self.labels) if out is None else None
        for part in ("first", "spares"):
            saved = load_file(pool_path(out, part, scale)) if out is not None else saved_pools[part]
            images = saved["images"]
            self.pool_labels[part] = saved["labels"].numpy()
            self.check[part] = check_probabilities(gen, images)
            self.features[part] = clf.features(images.numpy())
            self.judged[part] = clf.predict(images.numpy())
        if not np.array_equal(self.pool_labels["first"], self.labels):
            raise SystemExit("the first pool was drawn for another n or seed: draw it again")
        self.nudged = {}  # scale -> (rows, check, features, judged) of the nudged first draws
        if out is not None and pool_path(out, "nudges", scale).exists():
            saved = load_file(pool_path(out, "nudges", scale))
            rows = saved.pop("rows").numpy()
            for key, images in saved.items():
                self.nudged[float(key[1:])] = (rows, check_probabilities(gen, images), clf.features(images.numpy()),
                                               clf.predict(images.numpy()))

    def emulate(self, bars: dict[str, float], redraws: int, nudges: list[float] = ()) -> dict:
        """Replay the redraws with these bars (the first rounds nudged at ``nudges``); the scores of the images kept."""
        bar = np.array([bars.get(name, NAMED_AT) for name in self.names])
        labels, n = self.labels, len(self.labels)
        rows = np.arange(n)
        score = self.check["first"][rows, labels].copy()
        feats, judged = self.features["first"].copy(), self.judged["first"].copy()
        spares = {c: iter(np.flatnonzero(self.pool_labels["spares"] == c)) for c in range(len(self.names))}
        used = 0
        for r in range(redraws):
            for i in np.flatnonzero(score < bar[labels]):
                if r < len(nudges):  # the row's own noise, nudged: saved by --part nudges
                    if nudges[r] not in self.nudged or i not in self.nudged[nudges[r]][0]:
                        raise SystemExit(f"no nudge at {nudges[r]:g} for row {i}: run --part nudges with these bars")
                    rows, check, features, judges = self.nudged[nudges[r]]
                    j = int(np.searchsorted(rows, i))
                else:
                    j = next(spares[labels[i]], None)
                    if j is None:
                        raise SystemExit(f"the spares of {self.names[labels[i]]} ran out: draw a larger pool")
                    check, features, judges = self.check["spares"], self.features["spares"], self.judged["spares"]
                used += 1
                if check[j, labels[i]] > score[i]:
                    score[i], feats[i], judged[i] = check[j, labels[i]], features[j], judges[j]
        scores = feature_metrics(self.real, feats, 3, 0)
        per_class = {self.names[c]: float((judged[labels == c] == c).mean()) for c in range(len(self.names))}
        return {**scores, "label_accuracy": float((judged == labels).mean()), "per_class": per_class,
                "draws_per_image": 1 + used / n}


def row(bars: dict, res: dict) -> str:
    weakest = sorted((acc, name) for name, acc in res["per_class"].items() if name != "Shirt")[:2]
    weak = ", ".join(f"{name} {acc:.1%}" for acc, name in weakest)
    return (f"| {json.dumps(bars)} | {res['fd']:.3f} | {res['kid']:.4f} | {res['precision']:.3f} | "
            f"{res['recall']:.3f} | {res['label_accuracy']:.3f} | {weak}; Shirt {res['per_class']['Shirt']:.1%} | "
            f"{res['draws_per_image']:.2f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=None, help="folder of the pools (not with --real)")
    p.add_argument("--real", action="store_true", help="real training images instead of the model's draws")
    p.add_argument("--model", default="fashion")
    p.add_argument("--autoguidance", type=float, default=2.0)
    p.add_argument("-n", type=int, default=5000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--part", choices=["first", "spares", "nudges"], help="sample this pool instead of emulating")
    p.add_argument("--nudges", type=lambda t: [float(w) for w in t.split(",")], default=[],
                   help="classifier-guidance scales of the first rounds, e.g. 2,4 (with --part nudges: to draw)")
    p.add_argument("--redraws", type=int, default=5)
    p.add_argument("--bars", nargs="*", default=['{"Shirt": 0.3}'], help="JSON settings, class -> bar")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if (args.out is None) != args.real:
        p.error("give --out (the model's pools) or --real (training images), one of them")
    gen = Generator.load(args.model)
    if args.part == "nudges":
        draw_nudges(gen, args.autoguidance, args.n, args.seed, args.out, json.loads(args.bars[0]), args.nudges)
        return
    if args.part:
        draw_pool(gen, args.part, args.autoguidance, args.n, args.seed, args.out)
        return
    pools = Pools(gen, args.out, args.autoguidance, args.n, args.seed)
    what = "real training images" if args.real else f"autoguidance {args.autoguidance:g}"
    nudged = f", the first nudged at {','.join(f'{w:g}' for w in args.nudges)}" if args.nudges else ""
    print(f"{what}, n = {args.n}, up to {args.redraws} redraws{nudged} (emulated)\n")
    print("| bars | FD | KID | precision | recall | label accuracy | weakest classes | draws per image |")
    print("|---|---|---|---|---|---|---|---|")
    for text in args.bars:
        bars = json.loads(text)
        print(row(bars, pools.emulate(bars, args.redraws, args.nudges)), flush=True)


if __name__ == "__main__":
    main()
