"""Random streams: one independent, reproducible stream per Monte Carlo trial.

Trial ``i`` of a run with ``seed`` always starts from word ``i`` of
``numpy.random.SeedSequence(seed).generate_state(trials)``, whatever the number
of trials or worker threads.  Inside compiled kernels the stream is a splitmix64 generator
(a 64-bit state advanced in place), which is fast enough to draw one number
per edge without dominating the run time.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from numba import njit

from diffusio.errors import UsageError

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53


@njit(cache=True, nogil=True)
def uniform(state):
    """Next uniform number in [0, 1); ``state`` is a one-element uint64 array."""
    s = state[0] + _GOLDEN
    state[0] = s
    z = (s ^ (s >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    z = z ^ (z >> _S31)
    return (z >> _S11) * _TO_UNIT


@njit(cache=True, nogil=True)
def exponential(state, rate):
    """Exponential waiting time with the given rate (``inf`` for rate 0)."""
    if rate <= 0.0:
        return np.inf
    return -np.log(1.0 - uniform(state)) / rate


@njit(cache=True, nogil=True)
def below(state, n):
    """Uniform integer in [0, n)."""
    return min(int(uniform(state) * n), n - 1)


@njit(cache=True, nogil=True)
def geometric_skip(state, log_q):
    """Failures before the next success of a Bernoulli(p) sequence; ``log_q = log(1 - p)``."""
    if log_q == 0.0:
        return np.iinfo(np.int64).max
    gap = np.log(1.0 - uniform(state)) / log_q
    if gap >= 9.0e18:  # a tiny p (1e-178): int() of a larger float wraps to a negative index (found by the fuzz)
        return np.iinfo(np.int64).max
    return int(gap)


def trial_states(seed: int | None, trials: int) -> np.ndarray:
    """Initial kernel state of each trial, shape (trials,) uint64.

    Word ``i`` of ``SeedSequence(seed).generate_state(trials)``: the words are
    produced one after another, so trial ``i`` gets the same stream whatever
    the number of trials (``seed=None`` draws fresh entropy).
    """
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0):
        raise UsageError(f"seed must be a non-negative integer or None, got {seed!r}")
    return np.random.SeedSequence(seed).generate_state(trials, np.uint64)


def mix(words: np.ndarray) -> np.ndarray:
    """One splitmix64 output per word (vectorised): a fresh draw derived from each trial's state."""
    with np.errstate(over="ignore"):
        z = words.astype(np.uint64) ^ np.uint64(0xD1B54A32D192ED03)  # differs from the kernel's first draw
        z = (z ^ (z >> _S30)) * _MIX1
        z = (z ^ (z >> _S27)) * _MIX2
        return z ^ (z >> _S31)
