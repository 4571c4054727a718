"""Issue 23's silent-truncation case, measured: linear threshold on a sparse directed random graph.

    python bench/run_to_end.py [--n 1000000] [--trials 1000]

networkx.fast_gnp_random_graph(n, 8/n, directed=True, seed=0), the 10 nodes of highest out-degree
as seeds, uniform random thresholds, ``trials`` trials: the mean final number of active nodes from
diffusio (default settings: every trial runs to its end) and from cynetdiff
(``advance_until_completion``), side by side with their times.  Before the fix, diffusio's default
of 500 steps cut some trials short and reported about half of cynetdiff's mean.
"""

from __future__ import annotations

import argparse
import time

import networkx as nx
import numpy as np

from diffusio import spread


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--trials", type=int, default=1000)
    args = ap.parse_args()
    t0 = time.perf_counter()
    g = nx.fast_gnp_random_graph(args.n, 8 / args.n, directed=True, seed=0)
    seeds = [v for v, _ in sorted(g.out_degree(), key=lambda kv: -kv[1])[:10]]
    print(f"graph: {g.number_of_nodes():,} nodes, {g.number_of_edges():,} edges ({time.perf_counter() - t0:.0f} s)")
    graph = spread.as_graph(g)
    t0 = time.perf_counter()
    result = spread.simulate(graph, spread.LinearThreshold(), seeds=seeds, trials=args.trials, seed=0)
    ours_t = time.perf_counter() - t0
    finals = result.curves.groupby("trial")["active"].last()
    steps = result.curves.groupby("trial")["step"].max()
    print(f"diffusio : mean final active {finals.mean():,.0f} (sd {finals.std():,.0f}); longest trial "
          f"{steps.max()} steps; cut short {result.hit_max_steps}; {ours_t:.1f} s")
    from cynetdiff.utils import networkx_to_lt_model

    model, mapping = networkx_to_lt_model(g, rng=0)
    model.set_seeds([mapping[s] for s in seeds])
    t0 = time.perf_counter()
    totals = []
    for _ in range(args.trials):
        model.reset_model()
        model.advance_until_completion()
        totals.append(model.get_num_activated_nodes())
    peer_t = time.perf_counter() - t0
    totals = np.array(totals)
    print(f"cynetdiff: mean final active {totals.mean():,.0f} (sd {totals.std():,.0f}); {peer_t:.1f} s")
    print(f"ratio of means {finals.mean() / totals.mean():.3f}; time ratio ours/cynetdiff {ours_t / peer_t:.2f}")


if __name__ == "__main__":
    main()
