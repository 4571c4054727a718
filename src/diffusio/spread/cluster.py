"""Monte Carlo on a Dask cluster: the same trials, the same random streams, the same result.

:func:`~diffusio.spread.simulate` hands its blocks of trials to a ``dask.distributed.Client``
instead of local threads when given ``client=``.  The graph and the model's prepared arrays are
scattered to every worker once per call; each task runs one block of trials with the block's own
rows of the seed matrix and of the per-trial random states, so trial ``i`` still uses stream
``i`` and the result is identical to a local run with the same seed, whatever the number of
workers, the order tasks finish in, or a worker that dies mid-run (Dask reruns its lost tasks
elsewhere).  What travels: the graph once per worker (CSR arrays: about 8 bytes per edge), then
per block a few kilobytes of seeds and states out and the block's count curves back.

>>> from diffusio.cluster import connect                 # doctest: +SKIP
>>> with connect(workers=2) as client:                    # doctest: +SKIP
...     result = spread.simulate("karate", spread.SIR(beta=0.05, gamma=0.1), trials=10_000, seed=0, client=client)
"""

from __future__ import annotations

import uuid
import weakref

import numpy as np
from tqdm.auto import tqdm

from diffusio.cluster import as_finished, check_workers

BLOCKS_PER_WORKER = 4  # enough tasks to balance uneven blocks and to lose little when a worker dies


def _run_block(graph, prepared, model, seed_rows, rng_rows, horizon: int, record_final: bool):
    """One block of trials on a worker: (counts, last steps, final states, cut short)."""
    n = len(rng_rows)
    counts = np.empty((n, horizon + 1, model.n_codes), dtype=np.int32)
    steps = np.zeros(n, dtype=np.int64)
    final = np.zeros((n, graph.n_nodes if record_final else 0), dtype=np.int8)
    cut = np.zeros(n, dtype=np.bool_)
    model.run(graph, prepared, seed_rows, rng_rows, int(horizon), counts, steps, final, bool(record_final), cut)
    last = int(steps.max()) if n else 0
    return counts[:, : last + 1], steps, final, cut


# graph -> {client id: (the graph's future on that cluster, worker count)}: a sweep or a rerun of
# long trials sends the graph once, not once per call
_SHIPPED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def ship_graph(client, graph):
    """The graph scattered to every worker of ``client``, once per (graph, cluster)."""
    per_client = _SHIPPED.setdefault(graph, {})
    if client.id in per_client and per_client[client.id][0].status != "finished":
        del per_client[client.id]  # lost with every copy (a restarted cluster): send it again
    if client.id not in per_client:
        workers = check_workers(client)
        # random keys (hash=False): equal data of another call must not share, and so lose, this one's key
        per_client[client.id] = (client.scatter([graph], broadcast=True, hash=False)[0], workers)
    return per_client[client.id]


class ClusterRunner:
    """Runs blocks of trials of one simulation on a client's workers."""

    def __init__(self, client, graph, model, prepared, progress: bool = False):
        self.client, self.model, self.progress = client, model, progress
        self.graph, self.workers = ship_graph(client, graph)
        self.prepared = client.scatter([prepared], broadcast=True, hash=False)[0]  # one object, not one per item
        self.token = uuid.uuid4().hex[:12]

    def run(self, seed_matrix: np.ndarray, rng_states: np.ndarray, horizon: int, record_final: bool,
            n_final: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        n = len(rng_states)
        size = max(1, -(-n // (self.workers * BLOCKS_PER_WORKER)))
        bounds = list(range(0, n, size)) + [n]
        futures = {}
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            future = self.client.submit(_run_block, self.graph, self.prepared, self.model, seed_matrix[lo:hi],
                                        rng_states[lo:hi], int(horizon), bool(record_final),
                                        key=f"diffusio-spread-{self.token}-{horizon}-{lo}", retries=2)
            futures[future] = (lo, hi)
        counts = np.empty((n, horizon + 1, self.model.n_codes), dtype=np.int32)
        steps = np.zeros(n, dtype=np.int64)
        final = np.zeros((n, n_final), dtype=np.int8)
        cut = np.zeros(n, dtype=np.bool_)
        bar = tqdm(total=n, desc="trials on the cluster", unit="trial", disable=not self.progress)
        try:
            for future in as_finished(self.client, list(futures), "simulate on the cluster"):
                lo, hi = futures.pop(future)
                part, part_steps, part_final, part_cut = future.result()
                counts[lo:hi, : part.shape[1]] = part
                steps[lo:hi], final[lo:hi], cut[lo:hi] = part_steps, part_final, part_cut
                bar.update(hi - lo)
        finally:
            bar.close()
            for future in futures:
                future.cancel()
        return counts, steps, final, cut
