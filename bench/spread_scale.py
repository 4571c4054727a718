"""Issue 23's single-machine goals: independent cascade time and memory beside cynetdiff, per size.

    python bench/spread_scale.py [--sizes 10000,100000,1000000] [--trials 1000] [--p 0.05]

Two graph families, as the issue tried them: ``networkx.powerlaw_cluster_graph(n, 4, 0.1)``
(undirected) and ``networkx.fast_gnp_random_graph(n, 8 / n, directed=True)``, seed 0; the 10
nodes of highest out-degree as seeds; IC with a uniform ``p``; ``trials`` trials on one thread.

Each tool runs in a fresh process that first loads the CSR arrays from a file (int64 on disk),
so that nothing of one tool's run stays in the other's memory:

* graph MB: resident memory added by building the tool's graph from those arrays;
* peak MB: the process's peak resident memory above what it held after loading the arrays
  (graph build and simulation together);
* seconds: the ``trials`` trials alone (ours: one ``spread.simulate`` call, result included;
  cynetdiff: ``reset_model`` + ``advance_until_completion`` per trial, as its docs do).

Prints one row per (family, size, tool) and the ratios ours / cynetdiff.
"""

from __future__ import annotations

import argparse
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


def child(tool: str, path: str, trials: int, p: float) -> dict:
    if tool == "ours":
        import scipy.sparse as sp

        from diffusio import spread
    else:
        import array

        from cynetdiff.models import IndependentCascadeModel
    if tool == "ours":  # compile (or load from numba's cache) before measuring, as cynetdiff ships compiled
        import networkx as nx

        for directed in (False, True):
            tiny = spread.as_graph(nx.gnp_random_graph(50, 0.1, seed=0, directed=directed))
            spread.simulate(tiny, spread.IndependentCascade(p=p), seeds=[0], trials=2, seed=1, workers=1)
    data = np.load(path)
    indptr, indices, seeds, directed = data["indptr"], data["indices"], data["seeds"], bool(data["directed"])
    n = len(indptr) - 1
    reset_peak()
    base = rss_mb()
    if tool == "ours":
        matrix = sp.csr_array((np.ones(indices.size, np.float32), indices, indptr), shape=(n, n))
        graph = spread.as_graph(matrix, directed=directed)
        del matrix
        built = rss_mb()
        model = spread.IndependentCascade(p=p)
        t0 = time.perf_counter()
        result = spread.simulate(graph, model, seeds=seeds.tolist(), trials=trials, seed=0, workers=1)
        seconds = time.perf_counter() - t0
        mean = float(result.final_counts["active"].mean())
    else:
        starts, edges = array.array("I", indptr[:-1].astype(np.uint32)), array.array("I", indices.astype(np.uint32))
        model = IndependentCascadeModel(starts, edges, activation_prob=p, rng=0)
        built = rss_mb()
        model.set_seeds(seeds.tolist())
        t0 = time.perf_counter()
        total = 0
        for _ in range(trials):
            model.reset_model()
            model.advance_until_completion()
            total += model.get_num_activated_nodes()
        seconds = time.perf_counter() - t0
        mean = total / trials
    return {"graph_mb": built - base, "peak_mb": peak_mb() - base, "seconds": seconds,
            "mean_active": mean}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--p", type=float, default=0.05)
    ap.add_argument("--child", nargs=2, metavar=("TOOL", "FILE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.trials, args.p)))
        return
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")
    print("| graph | nodes | edges (CSR entries) | tool | graph MB | peak MB | seconds | mean active |")
    print("|---|---|---|---|---|---|---|---|")
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        for family in args.families.split(","):
            for n in [int(float(s)) for s in args.sizes.split(",")]:
                path = Path(tmp) / f"{family}-{n}.npz"
                nnz = write_graph(family, n, path)
                rows = {}
                for tool in ("ours", "cynetdiff"):
                    out = subprocess.run([sys.executable, __file__, "--trials", str(args.trials), "--p", str(args.p),
                                          "--child", tool, str(path)], capture_output=True, text=True, env=env)
                    if out.returncode:
                        raise SystemExit(f"{tool} failed on {family} {n}:\n{out.stderr[-3000:]}")
                    rows[tool] = row = json.loads(out.stdout.strip().splitlines()[-1])
                    print(f"| {family} | {n:,} | {nnz:,} | {tool} | {row['graph_mb']:.1f} | {row['peak_mb']:.1f} | "
                          f"{row['seconds']:.3f} | {row['mean_active']:,.1f} |", flush=True)
                ours, peer = rows["ours"], rows["cynetdiff"]
                ratios.append((family, n, ours["seconds"] / peer["seconds"], ours["peak_mb"] / max(peer["peak_mb"], 1e-9)))
    print("\n| graph | nodes | time ours / cynetdiff (goal <= 0.5) | peak memory ours / cynetdiff (goal <= 1.5) |")
    print("|---|---|---|---|")
    for family, n, t, m in ratios:
        print(f"| {family} | {n:,} | {t:.2f} | {m:.2f} |")


if __name__ == "__main__":
    main()
