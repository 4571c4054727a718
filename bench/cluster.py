"""Monte Carlo on a local Dask cluster: speed-up of 2 worker processes over 1, and the overhead.

    python bench/cluster.py --nodes 100000 --trials 2000

Rows, in one run on the same graph and seed: local (1 thread), a local cluster of 1 worker
process, of 2 worker processes; each checks that its result equals the local one.  The overhead
per task is the time of 200 no-op tasks through the scheduler divided by 200.  Numba kernels are
compiled on each worker before timing (one warm-up run), as a long-lived cluster would have them.
"""

from __future__ import annotations

import argparse
import time

from diffusio import spread
from diffusio.cluster import connect


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=100_000)
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    graph = spread.random_graph("barabasi-albert", n=args.nodes, m=3, seed=args.seed)
    model = spread.SIR(beta=0.05, gamma=0.1)
    run = dict(trials=args.trials, seed=args.seed)
    spread.simulate(graph, model, trials=4, seed=0, workers=1)  # compile
    local, t_local = timed(lambda: spread.simulate(graph, model, workers=1, **run))
    print(f"graph: barabasi-albert n={args.nodes:,} m=3, SIR(0.05, 0.1), {args.trials:,} trials\n")
    print("| run | seconds | speed-up over 1 worker | same result |\n|---|---|---|---|")
    print(f"| local, 1 thread | {t_local:.1f} | | |")
    times = {}
    for workers in (1, 2):
        with connect(workers=workers) as client:
            spread.simulate(graph, model, trials=4 * workers, seed=0, client=client)  # compile on every worker
            result, times[workers] = timed(lambda: spread.simulate(graph, model, client=client, **run))
            same = result.curves.equals(local.curves)
            if workers == 2:
                _, t_noop = timed(lambda: client.gather([client.submit(int, i, pure=False) for i in range(200)]))
        ratio = "" if workers == 1 else f"{times[1] / times[2]:.2f}x"
        print(f"| Dask, {workers} worker process{'es' if workers > 1 else ''} | {times[workers]:.1f} | {ratio} | {same} |")
    print(f"\noverhead per task (200 no-op tasks on 2 workers): {t_noop / 200 * 1000:.2f} ms")


if __name__ == "__main__":
    main()
