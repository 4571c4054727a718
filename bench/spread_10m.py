"""Issue 23's graph scale: a 10^7-node power-law graph, loaded and simulated on one machine.

    python bench/spread_10m.py [--n 10000000] [--degree 20] [--trials 1000] [--p 0.01] [--imm-k 50]

1. Generates an undirected Chung-Lu graph (expected degrees ~ a power law, exponent 2.5, mean
   ``degree``) with numpy alone, in chunks, and saves it as CSR arrays in an ``.npz`` file
   (networkx would need about 1 KB per edge).
2. In a fresh process: ``spread.as_graph(file.npz)``; then independent cascade, ``trials`` trials
   from the 10 highest-degree nodes on one thread; then IMM with ``k = imm-k`` and epsilon 0.5 (RR sets on all
   cores), and ``trials`` Monte Carlo trials of its seeds beside the ``imm-k`` highest-degree nodes.  Prints the
   time and the peak resident memory of each phase (VmHWM, reset between phases) and the bytes per edge.
3. cynetdiff on the same arrays in another fresh process (its uint32 CSR, built from numpy).
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

sys.path.insert(0, str(Path(__file__).parent))
from spread_scale import cynetdiff_ic, cynetdiff_trials, peak_mb, reset_peak, rss_mb  # noqa: E402


def chung_lu(n: int, degree: float, seed: int = 0, chunk: int = 10_000_000) -> tuple[np.ndarray, np.ndarray]:
    """CSR (indptr int64, indices int32) of an undirected Chung-Lu graph, self-loops and repeats dropped."""
    rng = np.random.default_rng(seed)
    weights = (np.arange(1, n + 1) / n) ** (-1 / 1.5)  # P(degree > k) ~ k^-1.5: exponent 2.5
    weights *= degree / weights.mean()
    cumulative = np.cumsum(weights / weights.sum())
    half = int(n * degree / 2)
    keys = []
    for lo in range(0, half, chunk):
        size = min(chunk, half - lo)
        u = np.searchsorted(cumulative, rng.random(size)).astype(np.int64)
        v = np.searchsorted(cumulative, rng.random(size)).astype(np.int64)
        u, v = np.minimum(u, v), np.maximum(u, v)
        keep = u != v
        keys.append(np.unique(u[keep] * n + v[keep]))
    key = np.unique(np.concatenate(keys))
    del keys
    u, v = (key // n).astype(np.int32), (key % n).astype(np.int32)
    del key
    rows = np.concatenate([u, v])
    cols = np.concatenate([v, u])
    del u, v
    order = np.lexsort((cols, rows))
    rows, cols = rows[order], cols[order]
    del order
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return indptr, cols


def ours(path: str, trials: int, p: float, imm_k: int) -> dict:
    import networkx as nx

    from diffusio import spread

    tiny = spread.as_graph(nx.gnp_random_graph(50, 0.1, seed=0))  # compile before measuring
    spread.simulate(tiny, spread.IndependentCascade(p=p), seeds=[0], trials=2, seed=1, workers=1)
    out = {}
    reset_peak(), (base := rss_mb())
    t0 = time.perf_counter()
    graph = spread.as_graph(path)
    out["load_s"], out["graph_mb"], out["load_peak_mb"] = time.perf_counter() - t0, rss_mb() - base, peak_mb() - base
    out["bytes_per_edge_entry"] = graph.nbytes / graph.indices.size
    out["nodes"], out["edge_entries"] = graph.n_nodes, int(graph.indices.size)
    seeds = np.argsort(-graph.out_degree, kind="stable")[:10].tolist()
    reset_peak(), (base := rss_mb())
    t0 = time.perf_counter()
    result = spread.simulate(graph, spread.IndependentCascade(p=p), seeds=seeds, trials=trials, seed=0, workers=1)
    out["ic_s"], out["ic_peak_mb"] = time.perf_counter() - t0, peak_mb() - base
    out["ic_mean_active"] = float(result.final_counts["active"].mean())
    print(json.dumps(out), flush=True)  # the IC row, in case IMM runs past a time limit
    if imm_k:
        model = spread.IndependentCascade(p=p)
        reset_peak(), (base := rss_mb())
        t0 = time.perf_counter()
        nodes, estimate, rr_sets = spread.imm(graph, model, imm_k, epsilon=0.5, seed=0)
        out["imm_s"], out["imm_peak_mb"] = time.perf_counter() - t0, peak_mb() - base
        out["imm_rr_sets"], out["imm_estimate"] = int(rr_sets), float(estimate[-1])
        print(json.dumps(out), flush=True)
        # the chosen seeds' spread by Monte Carlo (fresh streams), beside the imm_k highest-degree nodes
        top = np.argsort(-graph.out_degree, kind="stable")[:imm_k]
        for name, chosen in (("imm", nodes), ("degree", top)):
            result = spread.simulate(graph, model, seeds=graph.labels[chosen].tolist(), trials=trials, seed=7919,
                                     workers=1)
            out[f"{name}_{imm_k}_mc_mean"] = float(result.final_counts["active"].mean())
    return out


def peer(path: str, trials: int, p: float) -> dict:
    with np.load(path) as data:
        indptr, indices = data["indptr"], data["indices"]
    reset_peak(), (base := rss_mb())
    t0 = time.perf_counter()
    model = cynetdiff_ic(indptr, indices, p)
    out = {"load_s": time.perf_counter() - t0, "graph_mb": rss_mb() - base}
    seeds = np.argsort(-np.diff(indptr), kind="stable")[:10]
    del indptr, indices
    reset_peak(), (base := rss_mb())
    out["ic_s"], out["ic_mean_active"] = cynetdiff_trials(model, seeds, trials)
    out["ic_peak_mb"] = peak_mb() - base
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--degree", type=float, default=20)
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--p", type=float, default=0.01)
    ap.add_argument("--imm-k", type=int, default=50)
    ap.add_argument("--file", help="reuse (or keep) the generated .npz here")
    ap.add_argument("--child", choices=("ours", "cynetdiff"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        row = ours(args.file, args.trials, args.p, args.imm_k) if args.child == "ours" else peer(args.file, args.trials,
                                                                                                 args.p)
        print(json.dumps(row))
        return
    path = args.file or os.path.join(tempfile.mkdtemp(), "graph.npz")
    if not os.path.exists(path):
        t0 = time.perf_counter()
        indptr, indices = chung_lu(args.n, args.degree)
        np.savez(path, indptr=indptr, indices=indices)
        print(f"generated {args.n:,} nodes, {indices.size // 2:,} undirected edges in {time.perf_counter() - t0:.0f} s "
              f"-> {path} ({os.path.getsize(path) / 2**30:.2f} GiB)", flush=True)
        del indptr, indices
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")
    for tool in ("ours", "cynetdiff"):
        run = subprocess.run([sys.executable, __file__, "--child", tool, "--file", path, "--trials", str(args.trials),
                              "--p", str(args.p), "--imm-k", str(args.imm_k)], capture_output=True, text=True, env=env)
        if run.returncode:
            print(f"{tool}: failed (exit {run.returncode}):\n{run.stderr[-3000:]}", flush=True)
            continue
        print(f"{tool}: {run.stdout.strip().splitlines()[-1]}", flush=True)


if __name__ == "__main__":
    main()
