"""bfloat16 where the CPU computes it natively: one switch, ``bf16="auto" | "on" | "off"``.

CPUs with AVX-512 BF16 or AMX run bfloat16 matrix products several times faster than float32
(2,048 rows through a 128 -> 256 -> 128 pair of linear layers: 5.0 ms -> 0.8 ms on one shared AMD
EPYC core with AVX-512 BF16, a session probe); whole samplers gain less (1.9-2.8x measured for
tables and molecules, docs/benchmarks-tabular.md and -molecules.md).  Elsewhere bfloat16 is
emulated and slow, so ``auto`` turns it on only where ``/proc/cpuinfo`` lists one.

>>> use_bf16("off"), use_bf16("on")
(False, True)
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from diffusio.errors import UsageError

BF16_CHOICES = ("auto", "on", "off")


@functools.cache  # the CPU does not change: read /proc/cpuinfo once, not at every sample call
def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AMX or AVX-512 BF16); elsewhere it would be slow."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def use_bf16(choice: str, name: str = "bf16") -> bool:
    """``choice`` checked and resolved: ``on``, ``off``, or ``auto`` (on where the CPU has bf16)."""
    if choice not in BF16_CHOICES:
        raise UsageError(f"{name} must be auto, on or off, got {choice!r}")
    return choice == "on" or (choice == "auto" and cpu_has_bf16())


def bf16_autocast(enabled: bool):
    """Matrix products in bfloat16 (sums, norms and the sampler's own arithmetic stay float32)."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled)
