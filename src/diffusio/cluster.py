"""Dask clusters, for whatever diffusio runs on one: connect to a scheduler (or start a local
cluster), and check that every worker runs this diffusio version.  The work itself is split by its
owner: Monte Carlo blocks in :mod:`diffusio.spread.cluster`, image shards in
:func:`diffusio.generative.trust.synthesize.synthesize`.  docs/scale.md says how to start a cluster.

>>> from diffusio.cluster import connect                 # doctest: +SKIP
>>> with connect(workers=2) as client:                    # doctest: +SKIP
...     result = spread.simulate("karate", spread.SIR(beta=0.05, gamma=0.1), trials=10_000, seed=0, client=client)
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from diffusio.errors import UsageError

CONNECT_TIMEOUT = 15  # seconds to wait for a scheduler before saying it cannot be reached
WORKERLESS_TIMEOUT = 60.0  # seconds a run waits on a cluster without workers before it says so
POLL = 5.0  # seconds between looks at the cluster while a run waits


def _dask():
    try:
        import distributed
    except ImportError:
        raise UsageError("running on a cluster needs Dask distributed; pip install 'diffusio[cluster]' "
                         "(dask[distributed])") from None
    return distributed


@contextlib.contextmanager
def connect(scheduler: str | None = None, workers: int | None = None, *, quiet: bool = True) -> Iterator:
    """A Dask client: to the scheduler at ``scheduler`` (``tcp://host:8786``), or to a local cluster
    of ``workers`` single-threaded processes started (and stopped) here."""
    distributed = _dask()
    if (scheduler is None) == (workers is None):
        raise UsageError("give either scheduler (the address of a running Dask scheduler) or workers "
                         "(processes of a local cluster to start), not both or neither")
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as err:
            raise UsageError(f"could not reach a Dask scheduler at {scheduler} within {CONNECT_TIMEOUT} s ({err}); "
                             "start one with `dask scheduler` and workers with `dask worker ADDRESS`, or use "
                             "--workers N for a local cluster") from None
        with client:
            check_workers(client)
            yield client
        return
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise UsageError(f"workers must be a positive whole number of processes, got {workers!r}")
    import logging

    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.ERROR if quiet else logging.WARNING) as cluster, \
            distributed.Client(cluster) as client:
        yield client


def _version() -> str:
    from diffusio import __version__

    return __version__


def check_workers(client) -> int:
    """The number of workers, after checking that each one runs this diffusio version (a worker
    that dies meanwhile is left out: Dask moves its work elsewhere)."""
    from diffusio import __version__

    try:
        versions = client.run(_version, on_error="return")
    except Exception as err:  # noqa: BLE001 - the scheduler itself failed
        raise UsageError(f"could not ask the Dask workers for their diffusio version ({type(err).__name__}: {err}); "
                         "check that the scheduler and workers are running") from None
    gone = (OSError, TimeoutError)  # CommClosedError is an OSError: the worker died while asked
    broken = {w: v for w, v in versions.items() if isinstance(v, BaseException) and not isinstance(v, gone)}
    if broken:
        worker, err = next(iter(broken.items()))
        raise UsageError(f"Dask worker {worker} cannot run diffusio ({type(err).__name__}: {err}); install "
                         f"diffusio {__version__} on every worker (pip install diffusio=={__version__})")
    versions = {w: v for w, v in versions.items() if not isinstance(v, BaseException)}
    if not versions:
        raise UsageError("the Dask cluster has no workers; start some with `dask worker SCHEDULER_ADDRESS`")
    other = {w: v for w, v in versions.items() if v != __version__}
    if other:
        worker, version = next(iter(other.items()))
        raise UsageError(f"worker {worker} runs diffusio {version}, this client {__version__}; install the same "
                         "version everywhere, or results could differ")
    return len(versions)


def as_finished(client, futures, what: str) -> Iterator:
    """The ``futures`` as they finish.  Dask reruns a lost task on another worker, so a run outlives
    any worker but the last; if the cluster has had no worker at all for :data:`WORKERLESS_TIMEOUT`
    seconds, the unfinished tasks are cancelled and a UsageError says what ``what`` waited for,
    instead of waiting forever."""
    import time

    finished = _dask().as_completed(futures)
    left, total, looked, since = len(futures), len(futures), time.monotonic(), None
    try:
        while left:
            if finished.has_ready():
                for future in finished.next_batch(block=False):
                    left -= 1
                    yield future
                since = None
                continue
            time.sleep(0.005)
            if time.monotonic() - looked < POLL:
                continue
            looked = time.monotonic()
            try:
                workers = client.scheduler_info().get("workers")
            except OSError as err:  # CommClosedError: the scheduler itself is gone
                raise UsageError(f"{what}: lost the Dask scheduler ({type(err).__name__}: {err}); start it again "
                                 "and run it again") from None
            if workers:
                since = None
            elif since is None:
                since = looked
            elif looked - since >= WORKERLESS_TIMEOUT:
                raise UsageError(f"{what}: the Dask cluster has had no workers for {WORKERLESS_TIMEOUT:g} s, so "
                                 f"{left} of {total} tasks cannot run; start workers with `dask worker "
                                 "SCHEDULER_ADDRESS` and run it again")
    finally:
        for future in futures:
            if not future.done():
                future.cancel()


def gather(client, futures, what: str) -> list:
    """The futures' results in their order, waiting as :func:`as_finished` does."""
    for _ in as_finished(client, futures, what):
        pass
    return [future.result() for future in futures]
