"""Hold Ctrl-C through work that must not be cut in the middle, then act on it.

Imports and numba's compilation are two: a KeyboardInterrupt inside ``import scipy.stats`` surfaces as
an unrelated RuntimeError, and one inside a numba compilation can leave numba broken ("no compiled
object yet") or be lost, so that the run goes on.  Inside :func:`interrupts_held` a Ctrl-C is noted;
on leaving, it is raised as the KeyboardInterrupt it was.  Only the main thread receives signals,
so elsewhere this does nothing.
"""

from __future__ import annotations

import contextlib
import signal
import threading


@contextlib.contextmanager
def interrupts_held():
    """Run the body with Ctrl-C postponed to its end.

    >>> with interrupts_held():
    ...     pass
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda *_: pending.append(1))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)
    if pending:
        raise KeyboardInterrupt
