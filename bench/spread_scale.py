"""Issue 23's single-machine goals: independent cascade time and memory beside cynetdiff, per size.

    python bench/spread_scale.py [--sizes 10000,100000,1000000] [--trials 1000] [--p 0.05]

Two graph families, as the issue tried them: ``networkx.powerlaw_cluster_graph(n, 4, 0.1)``
(undirected) and ``networkx.fast_gnp_random_graph(n, 8 / n, directed=True)``, seed 0; the 10
nodes of highest out-degree as seeds; IC with a uniform ``p``; ``trials`` trials on one thread
(ours: ``--workers`` threads; cynetdiff has no parallel mode).

Each tool runs in a fresh process that first loads the CSR arrays from a file (int64 on disk),
so that nothing of one tool's run stays in the other's memory; ours receives them as a scipy CSR
matrix with unit int8 data (1 byte per entry more than cynetdiff's input), cynetdiff as its uint32
arrays, converted from numpy without a Python loop.  Memory is resident memory (VmHWM, reset
between phases), so it counts pages touched, not bytes allocated:

* graph MB: resident memory added by building the tool's graph from those arrays;
* held MB: what the process holds above that base after a first call: the graph plus the work
  arrays a tool keeps between calls (ours keeps them with the graph; cynetdiff in its model);
* peak MB, build: the peak above what the process held after loading the arrays, while building
  (ours: and during a first call of 2 trials, which allocates the work arrays it keeps);
* peak MB, trials: the peak above what it held with the graph built, while running the trials;
* seconds: the ``trials`` trials alone (ours: one ``spread.simulate`` call, result included;
  cynetdiff: ``reset_model`` + ``advance_until_completion`` per trial, as its docs do), the fastest
  of ``--repeat`` runs of the same seeded work (the machine's other jobs only ever add time).

Prints one row per (family, size, tool) and the ratios ours / cynetdiff.
"""

from __future__ import annotations

import argparse
import array
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FAMILIES = ("powerlaw", "gnp-directed")


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    """Peak resident memory since the last :func:`reset_peak` (VmHWM)."""
    with open("/proc/self/status") as fh:
        line = next(line for line in fh if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as fh:  # "5": reset the peak to the current size (Linux >= 4.0)
        fh.write("5")


def write_graph(family: str, n: int, path: Path) -> int:
    import networkx as nx
    import scipy.sparse as sp

    if family == "powerlaw":
        g = nx.powerlaw_cluster_graph(n, 4, 0.1, seed=0)
    else:
        g = nx.fast_gnp_random_graph(n, 8 / n, directed=True, seed=0)
    m = nx.to_scipy_sparse_array(g, nodelist=range(n), format="csr")
    del g
    m = sp.csr_array(m)
    m.sort_indices()
    out_degree = np.diff(m.indptr)
    seeds = np.argsort(-out_degree, kind="stable")[:10]
    np.savez(path, indptr=m.indptr.astype(np.int64), indices=m.indices.astype(np.int64), seeds=seeds,
             directed=family != "powerlaw")
    return int(m.nnz)


def cynetdiff_ic(indptr: np.ndarray, indices: np.ndarray, p: float):
    """cynetdiff's IC model on its own uint32 CSR, built from numpy without a Python loop."""
    from cynetdiff.models import IndependentCascadeModel

    starts, edges = array.array("I"), array.array("I")
    starts.frombytes(indptr[:-1].astype(np.uint32).tobytes())
    edges.frombytes(indices.astype(np.uint32).tobytes())
    return IndependentCascadeModel(starts, edges, activation_prob=p, rng=0)


def cynetdiff_trials(model, seeds: np.ndarray, trials: int) -> tuple[float, float]:
    """(seconds, mean final active) of ``trials`` runs to completion, as cynetdiff's docs run them."""
    model.set_seeds(np.asarray(seeds).tolist())
    t0 = time.perf_counter()
    total = 0
    for _ in range(trials):
        model.reset_model()
        model.advance_until_completion()
        total += model.get_num_activated_nodes()
    return time.perf_counter() - t0, total / trials


def child(tool: str, path: str, trials: int, p: float, workers: int, repeat: int) -> dict:
    if tool == "ours":
        import scipy.sparse as sp

        from diffusio import spread
    if tool == "ours":  # compile (or load from numba's cache) before measuring, as cynetdiff ships compiled
        import networkx as nx

        for directed in (False, True):  # compile, or load from numba's cache
            tiny = spread.as_graph(nx.gnp_random_graph(50, 0.1, seed=0, directed=directed))
            spread.simulate(tiny, spread.IndependentCascade(p=p), seeds=[0], trials=2, seed=1, workers=1)
    data = np.load(path)
    indptr, indices, seeds, directed = data["indptr"], data["indices"], data["seeds"], bool(data["directed"])
    n = len(indptr) - 1
    if tool == "ours":  # the input as a user holds it: a scipy CSR adjacency of the same arrays, unit weights
        matrix = sp.csr_array((np.ones(indices.size, np.int8), indices, indptr), shape=(n, n))
    reset_peak()
    base = rss_mb()
    if tool == "ours":
        graph = spread.as_graph(matrix, directed=directed)
        del matrix
        built, build_peak = rss_mb(), peak_mb()
        model = spread.IndependentCascade(p=p)
        # one-time costs of a first call on this graph (dispatch, pandas) stay out, as cynetdiff's
        # are inside its compiled module; the buffers of 1,000 trials are 500x larger than these 2
        spread.simulate(graph, model, seeds=seeds.tolist(), trials=2, seed=1, workers=workers)
        build_peak = max(build_peak, peak_mb())
        reset_peak()
        before_trials = rss_mb()
        seconds = float("inf")
        for _ in range(repeat):  # the same seed: the same work every time; the fastest counts
            t0 = time.perf_counter()
            result = spread.simulate(graph, model, seeds=seeds.tolist(), trials=trials, seed=0, workers=workers)
            seconds = min(seconds, time.perf_counter() - t0)
        mean = float(result.final_counts["active"].mean())
    else:
        model = cynetdiff_ic(indptr, indices, p)
        built, build_peak = rss_mb(), peak_mb()
        reset_peak()
        before_trials = rss_mb()
        seconds, mean = min(cynetdiff_trials(model, seeds, trials) for _ in range(repeat))
    return {"graph_mb": built - base, "held_mb": before_trials - base, "build_peak_mb": build_peak - base,
            "peak_mb": max(build_peak, peak_mb()) - base,
            "sim_peak_mb": peak_mb() - before_trials, "seconds": seconds, "mean_active": mean}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--p", type=float, default=0.05)
    ap.add_argument("--workers", type=int, default=1, help="threads for ours (default 1, as cynetdiff)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per tool; the fastest counts (default 3)")
    ap.add_argument("--child", nargs=2, metavar=("TOOL", "FILE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.trials, args.p, args.workers, args.repeat)))
        return
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")
    print(f"ours: {args.workers} thread(s); cynetdiff: 1")
    print("| graph | nodes | edges (CSR entries) | tool | graph MB | held MB | peak MB: build | peak MB: trials | "
          "seconds | mean active |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        for family in args.families.split(","):
            for n in [int(float(s)) for s in args.sizes.split(",")]:
                path = Path(tmp) / f"{family}-{n}.npz"
                nnz = write_graph(family, n, path)
                rows = {}
                for tool in ("ours", "cynetdiff"):
                    out = subprocess.run([sys.executable, __file__, "--trials", str(args.trials), "--p", str(args.p),
                                          "--workers", str(args.workers), "--repeat", str(args.repeat),
                                          "--child", tool, str(path)],
                                         capture_output=True, text=True, env=env)
                    if out.returncode:
                        raise SystemExit(f"{tool} failed on {family} {n}:\n{out.stderr[-3000:]}")
                    rows[tool] = row = json.loads(out.stdout.strip().splitlines()[-1])
                    print(f"| {family} | {n:,} | {nnz:,} | {tool} | {row['graph_mb']:.1f} | {row['held_mb']:.1f} | "
                          f"{row['build_peak_mb']:.1f} | "
                          f"{row['sim_peak_mb']:.1f} | {row['seconds']:.4g} | {row['mean_active']:,.1f} |", flush=True)
                ours, peer = rows["ours"], rows["cynetdiff"]
                ratios.append((family, n, ours["seconds"] / peer["seconds"], ours["held_mb"] / max(peer["held_mb"], 0.1),
                               ours["peak_mb"] / max(peer["peak_mb"], 0.1)))
    print("\n| graph | nodes | time ours / cynetdiff (goal <= 0.5) | held memory ours / cynetdiff | "
          "peak memory ours / cynetdiff (goal <= 1.5) |")
    print("|---|---|---|---|---|")
    for family, n, t, g, m in ratios:
        print(f"| {family} | {n:,} | {t:.2f} | {g:.2f} | {m:.2f} |")


if __name__ == "__main__":
    main()
