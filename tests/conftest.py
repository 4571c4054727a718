import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Under pytest-xdist each worker gets its share of the cores (and so do the subprocesses it starts):
# two workers with two threads each on two cores spend their time waiting for each other.
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
_threads = max(1, min(2, os.cpu_count() or 1) // _workers)
if _workers > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(_threads))
torch.set_num_threads(_threads)


@pytest.fixture(scope="session")
def shipped():
    from diffusio.generative import Generator

    return Generator.load("fashion")
