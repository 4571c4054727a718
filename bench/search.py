"""diffusio.search against the goals of issue 24, beside no-diffusion baselines, in one run.

    OMP_NUM_THREADS=1 python bench/search.py                 # the 10,000 Fashion-MNIST test images
    python bench/search.py --threads 2                       # ... with both cores, as a user's process runs
    OMP_NUM_THREADS=1 python bench/search.py --split val --n 5000 --weights 0,0.5,1,2,inf   # tuning, on training images
    python bench/search.py --split val --reranks 8,12,16,24,48 --examples 10    # how many hits to rerank

1. Indexing: the collection written as PNG files, then ``ImageIndex.empty`` (the class prototypes:
   generated images, timed apart; the disk cache is a fresh folder so nothing is reused) and
   ``index.add(folder)`` timed: images/s, decoding included.
2. Text queries: the 10 class names and 28 free-text phrasings that appear in no training caption
   (checked against captions.py); precision@10 and average precision over the whole ranking (a
   hit = the queried class), without and with the rerank, beside a no-diffusion baseline: the
   MiniLM embedding of the query matched to each class's mean caption embedding (softmax; a query
   that names a class exactly means that class, as for ours), times the shipped classifier's class
   probabilities of every image.
3. Query time: ``index.query(text, k=20)`` with and without the rerank, each prompt embedded fresh
   (the encoder loaded once before timing); median and max.
4. Query by example: ``--examples`` query images drawn from the collection, every other image
   ranked: mAP of our features, raw pixels, PCA (50 components fitted on the training split) and
   the shipped classifier's 128-d features (trained with labels).

Prints markdown tables and, with ``--out``, writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from diffusio.cli.args import positive_int

# query -> class; none of these appears among the training captions (checked below)
FREE_TEXT = {
    "a basic cotton tee": "T-shirt/top", "a v-neck tee": "T-shirt/top", "a sleeveless tank top": "T-shirt/top",
    "a pair of jeans": "Trouser", "blue denim jeans": "Trouser", "khaki chinos": "Trouser",
    "a cozy knit sweater": "Pullover", "a turtleneck sweater": "Pullover",
    "a cocktail dress": "Dress", "a maxi dress": "Dress", "an evening dress": "Dress",
    "a winter coat": "Coat", "a warm parka": "Coat", "a trench coat": "Coat",
    "beach sandals": "Sandal", "open-toed summer shoes": "Sandal",
    "a flannel shirt": "Shirt", "an oxford shirt with buttons": "Shirt",
    "running shoes": "Sneaker", "tennis shoes": "Sneaker", "gym shoes": "Sneaker",
    "a handbag": "Bag", "a leather handbag": "Bag", "a clutch purse": "Bag",
    "winter boots": "Ankle boot", "hiking boots": "Ankle boot", "a pair of boots with a heel": "Ankle boot",
    "chunky boots": "Ankle boot",
}


def average_precision(relevant: np.ndarray) -> float:
    """AP of one ranking (``relevant`` in rank order)."""
    hits = np.cumsum(relevant)
    return float((hits / np.arange(1, len(relevant) + 1) * relevant).sum() / max(relevant.sum(), 1))


def rank_scores(scores: np.ndarray, labels: np.ndarray, c: int) -> tuple[float, float]:
    order = np.argsort(-scores, kind="stable")
    rel = labels[order] == c
    return float(rel[:10].mean()), average_precision(rel)


def mapped_class(notes: list[str]) -> str | None:
    """The class a text query was read as, from the index's note."""
    for note in notes:
        if note.startswith("the query names the class "):
            return note.removeprefix("the query names the class ")
        if note.startswith("closest classes: "):
            return note.removeprefix("closest classes: ").split(",")[0].rsplit(" ", 1)[0]
    return None


def collection(split: str, n: int):
    from diffusio.generative.data.datasets import load_dataset

    if split == "test":
        data = load_dataset("fashion-mnist", "test")
        idx = np.arange(len(data))[:n]
    else:  # a validation split of the *training* set: for choosing settings, never the test images
        data = load_dataset("fashion-mnist", "train")
        idx = np.random.default_rng(0).permutation(len(data))[:n]
    return data.images[idx], data.labels[idx], data.class_names


def example_map(vectors: np.ndarray, labels: np.ndarray, queries: np.ndarray) -> float:
    v = vectors.astype(np.float32)
    v = v / np.linalg.norm(v, axis=1, keepdims=True).clip(1e-12)
    aps = []
    for start in range(0, len(queries), 200):
        q = queries[start:start + 200]
        sims = v[q] @ v.T
        sims[np.arange(len(q)), q] = -np.inf  # the query itself is not a hit
        for row, qi in zip(sims, q):
            order = np.argsort(-row, kind="stable")[:-1]
            aps.append(average_precision(labels[order] == labels[qi]))
    return float(np.mean(aps))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="fashion")
    ap.add_argument("--split", choices=("test", "val"), default="test")
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--examples", type=int, default=1000, help="query-by-example queries")
    ap.add_argument("--weights", default=None, help="also rank with these rerank weights (tuning), e.g. 0,1,inf")
    ap.add_argument("--reranks", default=None, help="also rank with these rerank depths (tuning), e.g. 8,12,24")
    ap.add_argument("--temperatures", default=None, help="also rank with these class temperatures (tuning)")
    ap.add_argument("--out", default=None, help="write the numbers as JSON here")
    ap.add_argument("--threads", type=positive_int("--threads"), default=1,
                    help="torch threads (1: the conservative figure; a user's process gets one per core)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["DIFFUSIO_CACHE"] = tempfile.mkdtemp(prefix="search-bench-cache-")  # nothing reused

    from diffusio.generative.conditioning.captions import FASHION_SYNONYMS, class_captions
    from diffusio.generative.conditioning.text import encode
    from diffusio.generative.data.datasets import load_dataset, to_uint8
    from diffusio.generative.data.images import png_bytes
    from diffusio.generative.evaluation.classifier import load_classifier
    from diffusio.search import ImageIndex
    from diffusio.search import index as index_mod

    training_captions = {c.lower() for name in FASHION_SYNONYMS for c in class_captions(name, FASHION_SYNONYMS)}
    clash = [q for q in FREE_TEXT if q.lower() in training_captions]
    assert not clash, f"free-text queries that are training captions: {clash}"

    images, labels, names = collection(args.split, args.n)
    n = len(images)
    print(f"# diffusio search bench: {n:,} Fashion-MNIST {args.split} images, model {args.model}, "
          f"{platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}\n")
    folder = Path(tempfile.mkdtemp(prefix="search-bench-"))
    for i, img in enumerate(to_uint8(images)):
        (folder / f"{i:05d}.png").write_bytes(png_bytes(img))

    started = time.perf_counter()
    index = ImageIndex.empty(args.model)
    bank_s = time.perf_counter() - started
    report = index.add(folder)
    assert report.added == n and not report.unreadable
    out = {"n": n, "split": args.split, "model": args.model, "bank_seconds": bank_s,
           "index_seconds": report.seconds, "images_per_second": report.images_per_second}
    print("## Indexing\n")
    print("| images | seconds (add) | images/s | class prototypes (once per index) |\n|---|---|---|---|")
    print(f"| {n:,} | {report.seconds:.1f} | {report.images_per_second:.0f} | {bank_s:.1f} s |\n")
    ids = np.array([int(Path(p).stem) for p in index.paths])
    labels = labels[ids]  # the index's order (sorted file names = collection order)

    # ---- text queries
    queries = [(name, name) for name in names] + list(FREE_TEXT.items())
    clf = load_classifier("fashion-mnist")
    probs = clf.predict_proba(images[ids])
    class_text = np.stack([encode(class_captions(name, FASHION_SYNONYMS)).mean(0) for name in names])
    class_text /= np.linalg.norm(class_text, axis=1, keepdims=True)
    weights = [float(w) for w in args.weights.split(",")] if args.weights else []
    temps = [float(t) for t in args.temperatures.split(",")] if args.temperatures else []
    depths = [int(r) for r in args.reranks.split(",")] if args.reranks else []
    rows = []
    for text, cls in queries:
        c = names.index(cls)
        row = {"query": text, "class": cls, "kind": "class name" if text == cls else "free text"}
        full = index.query(text, k=n, rerank=0)
        row["mapped"] = mapped_class(full.notes)
        order = np.array([h.id for h in full.hits])
        row["plain"] = rank_scores(-np.argsort(order).astype(float), labels, c)
        ranked = index.query(text, k=n)
        order = np.array([h.id for h in ranked.hits])
        row["rerank"] = rank_scores(-np.argsort(order).astype(float), labels, c)
        for w in weights:
            r = index.query(text, k=n, rerank_weight=w if np.isfinite(w) else 1e6)
            row[f"w={w:g}"] = rank_scores(-np.argsort(np.array([h.id for h in r.hits])).astype(float), labels, c)
        for depth in depths:
            r = index.query(text, k=n, rerank=depth)
            row[f"r={depth}"] = rank_scores(-np.argsort(np.array([h.id for h in r.hits])).astype(float), labels, c)
        for t in temps:
            keep, index_mod.TEMPERATURE = index_mod.TEMPERATURE, t
            r = index.query(text, k=n, rerank=0)
            index_mod.TEMPERATURE = keep
            row[f"T={t:g}"] = rank_scores(-np.argsort(np.array([h.id for h in r.hits])).astype(float), labels, c)
        q = encode([text])[0]
        w_text = np.exp((class_text @ q) / index_mod.TEMPERATURE)
        if row["mapped"] in names and "names the class" in full.notes[0]:  # the same exact-name rule as ours
            w_text = np.eye(len(names))[names.index(row["mapped"])]
        row["baseline"] = rank_scores(probs @ (w_text / w_text.sum()), labels, c)
        rows.append(row)
    methods = (["plain", "rerank", "baseline"] + [f"w={w:g}" for w in weights] + [f"r={r}" for r in depths]
               + [f"T={t:g}" for t in temps])
    print("## Text queries (precision@10 / mAP; a hit = the queried class)\n")
    print("| queries | " + " | ".join(methods) + " |\n|---|" + "---|" * len(methods))
    summary = {}
    kinds = {"class name": lambda r: r["kind"] == "class name", "free text": lambda r: r["kind"] == "free text",
             "all": lambda r: True, "all the model reads as their class": lambda r: r["mapped"] == r["class"]}
    for kind, keep in kinds.items():
        sel = [r for r in rows if keep(r)]
        cells = []
        for m in methods:
            p10, mp = np.mean([r[m][0] for r in sel]), np.mean([r[m][1] for r in sel])
            summary[f"{kind}/{m}"] = {"p@10": p10, "mAP": mp}
            cells.append(f"{p10:.3f} / {mp:.3f}")
        print(f"| {kind} ({len(sel)}) | " + " | ".join(cells) + " |")
    print("\nper query (p@10 / AP):\n")
    print("| query | class | " + " | ".join(methods[:3]) + " |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['query']} | {r['class']} | " + " | ".join(f"{r[m][0]:.1f} / {r[m][1]:.3f}" for m in methods[:3]) + " |")
    out["text"] = {"summary": summary, "rows": rows}

    # ---- query time
    from diffusio.generative.conditioning import text as text_mod

    encode(["warm-up prompt for the encoder"])
    times = {"without rerank": [], "with rerank": []}
    for i, (text, _) in enumerate(queries):
        for key, rr in (("without rerank", 0), ("with rerank", None)):
            text_mod.cache_dir = (lambda d=tempfile.mkdtemp(): Path(d))  # every prompt embedded fresh
            t = time.perf_counter()
            index.query(text, k=20, rerank=rr)
            times[key].append(time.perf_counter() - t)
    print("\n## Text query time over the collection (k=20, prompt embedded fresh)\n")
    print("| | median ms | max ms |\n|---|---|---|")
    for key, ts in times.items():
        print(f"| {key} | {1000 * np.median(ts):.0f} | {1000 * np.max(ts):.0f} |")
    out["query_ms"] = {k: {"median": 1000 * float(np.median(v)), "max": 1000 * float(np.max(v))} for k, v in times.items()}

    # ---- query by example
    from sklearn.decomposition import PCA

    q = np.random.default_rng(1).choice(n, size=min(args.examples, n), replace=False)
    train = load_dataset("fashion-mnist", "train")
    flat = images[ids].reshape(n, -1)
    pca = PCA(50, random_state=0).fit(train.images[:20_000].reshape(20_000, -1))
    maps = {"diffusion features (ours, no labels)": example_map(index.vectors(), labels, q),
            "raw pixels": example_map(flat, labels, q),
            "PCA, 50 components": example_map(pca.transform(flat), labels, q),
            "shipped classifier features (trained with labels)": example_map(clf.features(images[ids]), labels, q)}
    print(f"\n## Query by example ({len(q)} queries from the collection, every other image ranked)\n")
    print("| features | mAP |\n|---|---|")
    for k, v in maps.items():
        print(f"| {k} | {v:.3f} |")
    out["example_map"] = maps
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2, default=float))


if __name__ == "__main__":
    main()
