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

GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # the step of the state: one draw each
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
BITS_DROPPED = np.uint64(11)  # a draw keeps the top 53 bits of the output word
TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53


@njit(cache=True, nogil=True, inline="always")
def scramble(s):
    """The splitmix64 output word of state ``s`` (a uint64 scalar)."""
    z = (s ^ (s >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@njit(cache=True, nogil=True)
def uniform(state):
    """Next uniform number in [0, 1); ``state`` is a one-element uint64 array."""
    s = state[0] + GOLDEN
    state[0] = s
    return (scramble(s) >> BITS_DROPPED) * TO_UNIT


@njit(cache=True, nogil=True, inline="always")
def integer_below(p):
    """``uniform() < p`` as an integer test on the draw's 53 bits ``k``: ``k * 2**-53 < p`` holds exactly
    when ``k < ceil(p * 2**53)`` (both sides scale by a power of two, which is exact); ``0 <= p <= 1``."""
    return np.uint64(np.ceil(p * 9007199254740992.0))


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
    return generate_state64(np.random.SeedSequence(seed).pool, trials)


# numpy's SeedSequence.generate_state (O'Neill's seed_seq hash), vectorised: numpy loops in Python
# over the words, 0.1-0.2 ms per 1,000 trials, as long as the 1,000 small cascades themselves
_INIT_B, _MULT_B = np.uint32(0x8B51F9DD), np.uint32(0x58F38DED)


def generate_state64(pool: np.ndarray, n_words: int) -> np.ndarray:
    """``SeedSequence.generate_state(n_words, np.uint64)`` of the sequence whose entropy ``pool``
    (4 uint32 words) is given: word ``k`` of 32 bits is ``(pool[k % 4] ^ h_k) * h_(k+1)`` with
    ``h_k = INIT_B * MULT_B**k``, then xor-shifted by 16; pairs of them make each 64-bit word."""
    count = 2 * n_words
    factors = np.full(count + 1, _MULT_B, np.uint32)
    factors[0] = _INIT_B
    with np.errstate(over="ignore"):
        hashes = np.cumprod(factors, dtype=np.uint32)  # wraps mod 2**32, as the uint32 loop does
        cycled = np.tile(np.asarray(pool, np.uint32), -(-count // len(pool)))[:count]  # pool[k % 4]
        words = (cycled ^ hashes[:-1]) * hashes[1:]
    words ^= words >> np.uint32(16)
    return words.astype("<u4").view("<u8").astype(np.uint64)


def mix(words: np.ndarray) -> np.ndarray:
    """One splitmix64 output per word (vectorised): a fresh draw derived from each trial's state."""
    with np.errstate(over="ignore"):
        z = words.astype(np.uint64) ^ np.uint64(0xD1B54A32D192ED03)  # differs from the kernel's first draw
        z = (z ^ (z >> _S30)) * _MIX1
        z = (z ^ (z >> _S27)) * _MIX2
        return z ^ (z >> _S31)
