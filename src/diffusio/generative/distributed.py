"""Data-parallel training across processes with PyTorch's own engine (``torchrun``).

``torchrun --nproc_per_node=2 -m diffusio train ...`` starts one process per rank with ``RANK``,
``WORLD_SIZE`` and ``MASTER_ADDR``/``MASTER_PORT`` set; :func:`setup` joins them into a process
group (gloo: the trainer runs on CPU).  Every rank draws the same global batch and the same noise
from the same seeded generator and trains on its own slice of it; DistributedDataParallel averages
the gradients, so the update equals a single process's on the whole batch.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from diffusio.errors import UsageError


def world_from_env() -> tuple[int, int]:
    """(rank, world size) as torchrun sets them; (0, 1) for a plain run."""
    try:
        return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    except ValueError as err:
        raise UsageError(f"RANK/WORLD_SIZE must be integers ({err}); start with torchrun") from err


def setup(batch_size: int) -> tuple[int, int]:
    """Join the process group when started by torchrun; returns (rank, world size)."""
    rank, world = world_from_env()
    if world == 1:
        return 0, 1
    if batch_size % world:
        raise UsageError(f"--batch-size {batch_size} must be divisible by the {world} processes; "
                         f"use e.g. {batch_size - batch_size % world or world}")
    if not dist.is_initialized():
        dist.init_process_group("gloo", rank=rank, world_size=world)
    return rank, world


def shard(world: int, rank: int, n: int) -> slice:
    """This rank's rows of a global batch of ``n``."""
    per = n // world
    return slice(rank * per, (rank + 1) * per)


def mean_across(value: float, world: int) -> float:
    """Average a scalar over the ranks (for logging the global loss)."""
    if world == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t) / world


def any_across(flag: bool, world: int) -> bool:
    """True on every rank if it is true on any (a stop request, a spent time budget)."""
    if world == 1:
        return flag
    t = torch.tensor([int(flag)])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t)


def barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


def teardown(world: int) -> None:
    if world > 1 and dist.is_initialized():
        dist.destroy_process_group()
