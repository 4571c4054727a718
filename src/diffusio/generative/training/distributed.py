"""Data-parallel training across processes with PyTorch's own engine (``torchrun``).

``torchrun --nproc_per_node=2 -m diffusio train ...`` starts one process per rank with ``RANK``,
``WORLD_SIZE`` and ``MASTER_ADDR``/``MASTER_PORT`` set; :func:`setup` joins them into a process
group: gloo when training on the CPU, nccl on GPUs (one GPU per rank, ``LOCAL_RANK``).  Every rank
draws the same global batch and the same noise from the same seeded CPU generator and trains on
its own slice of it; DistributedDataParallel averages the gradients, so the update equals a single
process's on the whole batch.

>>> resolve_device("cpu"), backend_for(torch.device("cpu")), backend_for(torch.device("cuda", 0))
(device(type='cpu'), 'gloo', 'nccl')
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


def local_rank() -> int:
    """This process's index on its machine (torchrun's ``LOCAL_RANK``; 0 for a plain run)."""
    try:
        return int(os.environ.get("LOCAL_RANK", 0))
    except ValueError as err:
        raise UsageError(f"LOCAL_RANK must be an integer ({err}); start with torchrun") from err


def resolve_device(requested: str) -> torch.device:
    """``cpu``, ``cuda`` (this rank's GPU, ``cuda:LOCAL_RANK``) or ``auto`` (a GPU when PyTorch sees one)."""
    if requested not in ("cpu", "cuda", "auto"):
        raise UsageError(f"--device must be cpu, cuda or auto, got {requested!r}")
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise UsageError("--device cuda: PyTorch sees no CUDA GPU here (torch.cuda.is_available() is False); "
                         "use --device cpu, or install a CUDA build of torch on a machine with a GPU")
    index = local_rank()
    if index >= torch.cuda.device_count():
        raise UsageError(f"--device cuda: rank {index} on this machine needs GPU {index}, but only "
                         f"{torch.cuda.device_count()} are visible; start at most that many processes per machine")
    return torch.device("cuda", index)


def backend_for(device: torch.device) -> str:
    """NCCL between GPUs, gloo between CPU processes."""
    return "nccl" if device.type == "cuda" else "gloo"


def setup(batch_size: int, device: torch.device = torch.device("cpu")) -> tuple[int, int]:
    """Join the process group when started by torchrun; returns (rank, world size)."""
    rank, world = world_from_env()
    if world == 1:
        return 0, 1
    if batch_size % world:
        raise UsageError(f"--batch-size {batch_size} must be divisible by the {world} processes; "
                         f"use e.g. {batch_size - batch_size % world or world}")
    if device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL's collectives and barriers use the current device
    if not dist.is_initialized():
        dist.init_process_group(backend_for(device), rank=rank, world_size=world)
    return rank, world


def shard(world: int, rank: int, n: int) -> slice:
    """This rank's rows of a global batch of ``n``."""
    per = n // world
    return slice(rank * per, (rank + 1) * per)


def _collective_device() -> torch.device:
    # NCCL reduces only tensors on the GPU; gloo only those on the CPU
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def mean_across(value: float, world: int) -> float:
    """Average a scalar over the ranks (for logging the global loss)."""
    if world == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=_collective_device())
    dist.all_reduce(t)
    return float(t) / world


def any_across(flag: bool, world: int) -> bool:
    """True on every rank if it is true on any (a stop request, a spent time budget)."""
    if world == 1:
        return flag
    t = torch.tensor([int(flag)], device=_collective_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t)


def barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


def teardown(world: int) -> None:
    if world > 1 and dist.is_initialized():
        dist.destroy_process_group()
