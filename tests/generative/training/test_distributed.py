"""torchrun with two processes trains the same weights as one process on the same global batch."""

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from diffusio.generative.checkpoint.files import load_run_state

ARGS = ["--data", "digits", "--batch-size", "16", "--base", "8", "--mults", "1,2", "--attn-levels", "1",
        "--cond", "class", "--every", "2", "--quiet", "--threads", "1"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(out, steps, *, procs=1, resume=False, bf16="off"):
    extra = ["--resume"] if resume else []
    extra += ["--bf16", bf16]
    cmd = [sys.executable, "-m", "diffusio", "train", "--out", str(out), "--steps", str(steps), *ARGS, *extra]
    logs = Path(str(out) + f"-logs-{steps}")
    if procs > 1:  # --tee: each rank's output also goes to its own file, read back if the run fails
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={procs}",
               f"--master_port={free_port()}", "--log-dir", str(logs), "--tee", "3",
               "-m", "diffusio", "train", "--out", str(out), "--steps", str(steps), *ARGS, *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:] + rank_logs(logs)
    return done.stdout


def rank_logs(folder: Path) -> str:
    """The tail of every rank's own stderr, which torchrun's summary leaves out."""
    parts = [f"\n--- {p.relative_to(folder)} ---\n{p.read_text(errors='replace')[-3000:]}"
             for p in sorted(folder.rglob("stderr.log"))] if folder.is_dir() else []
    return "".join(parts) or "\n(no per-rank logs)"


def max_weight_difference(a, b) -> float:
    x, y = load_run_state(a)[1], load_run_state(b)[1]
    keys = [k for k in x if k.startswith(("net.", "ema."))]
    assert keys and set(keys) <= set(y)
    return max(float((x[k].float() - y[k].float()).abs().max()) for k in keys)


@pytest.mark.slow
def test_two_processes_equal_one_and_resume(tmp_path):
    out = train(tmp_path / "ddp", 4, procs=2)
    assert out.count("model saved") == 1  # only rank 0 reports and writes
    train(tmp_path / "single", 4)
    assert max_weight_difference(tmp_path / "ddp", tmp_path / "single") < 1e-5
    # under bfloat16 autocast each rank rounds its half batch's activations on its own: equal to
    # bfloat16's precision, not float32's (1.2e-5 measured on an AMX Xeon; emulated elsewhere)
    train(tmp_path / "ddp-bf16", 4, procs=2, bf16="on")
    train(tmp_path / "single-bf16", 4, bf16="on")
    assert max_weight_difference(tmp_path / "ddp-bf16", tmp_path / "single-bf16") < 1e-4
    shutil.copytree(tmp_path / "ddp", tmp_path / "ddp-at-4")
    train(tmp_path / "ddp", 6, procs=2, resume=True)
    train(tmp_path / "single", 6, resume=True)
    assert max_weight_difference(tmp_path / "ddp", tmp_path / "single") < 1e-5
    assert max_weight_difference(tmp_path / "ddp", tmp_path / "ddp-at-4") > 2e-5  # the resumed steps moved the weights (warm-up lr) beyond the tolerance


def test_batch_must_split_evenly(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
           "-m", "diffusio", "train", "--out", str(tmp_path / "x"), "--steps", "1",
           *[a if a != "16" else "15" for a in ARGS]]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode != 0 and "must be divisible by the 2 processes" in done.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_device_auto_on_a_cpu_machine_trains_the_same_bytes_as_cpu(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("auto picks the GPU here")
    train(tmp_path / "cpu", 2)
    cmd = [sys.executable, "-m", "diffusio", "train", "--out", str(tmp_path / "auto"), "--steps", "2", *ARGS,
           "--device", "auto", "--bf16", "off"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert max_weight_difference(tmp_path / "cpu", tmp_path / "auto") == 0.0


def test_device_cuda_without_a_gpu_is_refused_before_anything_is_written(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    cmd = [sys.executable, "-m", "diffusio", "train", "--out", str(tmp_path / "x"), "--steps", "1", *ARGS,
           "--device", "cuda"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "sees no CUDA GPU" in done.stderr and "--device cpu" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "x").exists()


def test_gpu_ranks_map_to_their_own_gpu_and_use_nccl(monkeypatch):
    import torch

    from diffusio.errors import UsageError
    from diffusio.generative.training import distributed

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed.resolve_device("cuda") == torch.device("cuda", 1)
    assert distributed.resolve_device("auto") == torch.device("cuda", 1)
    assert distributed.backend_for(torch.device("cuda", 1)) == "nccl"
    assert distributed.backend_for(torch.device("cpu")) == "gloo"
    monkeypatch.setenv("LOCAL_RANK", "2")  # a third process on a two-GPU machine
    with pytest.raises(UsageError, match="only 2 are visible"):
        distributed.resolve_device("cuda")
    with pytest.raises(UsageError, match="must be cpu, cuda or auto"):
        distributed.resolve_device("tpu")
