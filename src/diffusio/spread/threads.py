"""Trials in blocks on daemon threads: Ctrl-C and a caller's time limit stop a run between blocks,
and the threads are kept between calls, so a small run does not pay for starting them."""

from __future__ import annotations

import os
import queue
import threading
import time
from typing import Callable

from diffusio.errors import Cancelled


# Handing blocks to threads costs about 0.1 ms a call, as much as 100 small cascades.  So a run
# first times up to PROBE trials on the calling thread (one, then as many as fit in SHORT_ALONE: a
# kernel call there cannot be interrupted by Ctrl-C), and a rest expected to be short stays there too:
PROBE = 16
SHORT_ALONE = 0.05       # seconds, with one worker (Ctrl-C waits for the rest: at most this long)
SHORT_PARALLEL = 0.0005  # seconds, with more: only a rest worth less than sharing it out


def run_interruptibly(run_block, trials: int, workers: int, block_size: int = 256, should_stop=None) -> None:
    """Run ``run_block(lo, hi)`` over ``[0, trials)`` in blocks on daemon threads (the kernels
    release the GIL), so that Ctrl-C stops the run between blocks instead of waiting for all of them.
    Short runs (timed on their first PROBE trials) stay on the calling thread.
    Which block runs on which thread does not matter: trial ``i`` always uses random stream ``i``."""
    start = 0
    if trials > PROBE and (should_stop is None or not should_stop()):
        clock = time.perf_counter()
        run_block(0, 1)
        start = 1
        while start < PROBE:  # as many more as fit in SHORT_ALONE by the time of those so far
            spent = time.perf_counter() - clock
            if spent > SHORT_ALONE:
                break  # long trials: the rest goes to the threads, where Ctrl-C reaches it
            fit = int((SHORT_ALONE - spent) / max(spent / start, 1e-9))
            chunk = min(PROBE - start, max(1, fit))
            run_block(start, start + chunk)
            start += chunk
        rest = (time.perf_counter() - clock) / start * (trials - start)
        if rest < (SHORT_ALONE if workers == 1 else SHORT_PARALLEL):
            run_block(start, trials)
            return
    bounds = list(range(start, trials, block_size)) + [trials]
    blocks = list(zip(bounds[:-1], bounds[1:]))[::-1]
    stop, errors = threading.Event(), []
    helpers = min(workers, len(blocks))
    finished = threading.Semaphore(0)

    def drain() -> None:
        while not stop.is_set():
            if should_stop is not None and should_stop():
                errors.append(Cancelled("simulation stopped: the caller's time limit was reached"))
                stop.set()
                return
            try:
                lo, hi = blocks.pop()
            except IndexError:
                return
            try:
                run_block(lo, hi)
            except BaseException as err:  # noqa: BLE001 - handed to the main thread
                errors.append(err)
                stop.set()

    _THREADS.submit(drain, helpers, finished.release)
    try:
        for _ in range(helpers):
            while not finished.acquire(timeout=0.1):
                pass
    except KeyboardInterrupt:
        stop.set()  # the running blocks finish on their daemon threads; nothing waits for them
        raise
    if errors:
        raise errors[0]


class _ThreadPool:
    """Daemon threads kept for the life of the process.  Starting a thread costs 0.1-4 ms (the
    upper end on a busy machine) and handing a task to a waiting one about 5 us: a small cascade
    on a big graph takes less than the former.  A task never waits behind a busy thread: threads
    are added when too few are idle (after Ctrl-C some may still be finishing an old block)."""

    def __init__(self) -> None:
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0

    def submit(self, task: Callable[[], None], copies: int, done: Callable[[], None]) -> None:
        """Run ``task`` on ``copies`` threads at once; each calls ``done()`` when its copy ends."""
        with self._lock:
            started = copies - min(copies, self._idle)
            self._idle -= copies - started
        for _ in range(started):  # the job goes through the queue: a Thread keeps its args for good
            threading.Thread(target=self._serve, daemon=True, name="diffusio-spread").start()
        for _ in range(copies):
            self._tasks.put((task, done))

    def _serve(self) -> None:
        while True:
            task, done = self._tasks.get()
            try:
                task()
            except BaseException:  # noqa: BLE001 -- tasks report their own errors; the thread stays
                pass
            task = None  # drop the finished run (its graph, its counts) before saying so and waiting
            with self._lock:
                self._idle += 1
            done()
            done = None


_THREADS = _ThreadPool()
os.register_at_fork(after_in_child=_THREADS.__init__)  # a forked child has none of the parent's threads
