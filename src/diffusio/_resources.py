"""Refuse work that cannot fit before allocating it: an estimate of the memory a request needs
against the memory this machine has, with a message that names the fix.

>>> check_memory(10**6, "a small request", "nothing")          # fits: returns quietly
>>> check_memory(10**18, "-n 10000000000", "generate fewer images")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
diffusio.errors.UsageError: -n 10000000000 needs about 1,000,000,000.0 GB, more than half of this machine's ... GB; generate fewer images
"""

from __future__ import annotations

import os

from diffusio.errors import UsageError


def physical_memory() -> int:
    """Bytes of RAM on this machine (a generous 16 GiB where it cannot be read)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 16 * 2 ** 30


def check_memory(needed: float, what: str, fix: str, share: float = 0.5) -> None:
    """Raise if ``needed`` bytes exceed ``share`` of the machine's memory."""
    have = physical_memory()
    if needed > share * have:
        raise UsageError(f"{what} needs about {needed / 1e9:,.1f} GB, more than half of this machine's "
                         f"{have / 1e9:,.1f} GB; {fix}")
