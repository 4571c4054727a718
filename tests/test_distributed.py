"""torchrun with two processes trains the same weights as one process on the same global batch."""

import os
import shutil
import socket
import subprocess
import sys

from safetensors.torch import load_file

ARGS = ["--data", "digits", "--batch-size", "16", "--base", "8", "--mults", "1,2", "--attn-levels", "1",
        "--cond", "class", "--every", "2", "--quiet", "--threads", "1"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(out, steps, *, procs=1, resume=False):
    extra = ["--resume"] if resume else []
    cmd = [sys.executable, "-m", "diffusio", "train", "--out", str(out), "--steps", str(steps), *ARGS, *extra]
    if procs > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={procs}",
               f"--master_port={free_port()}", "-m", "diffusio", "train", "--out", str(out), "--steps", str(steps),
               *ARGS, *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def max_weight_difference(a, b) -> float:
    x, y = load_file(a / "train_state.safetensors"), load_file(b / "train_state.safetensors")
    keys = [k for k in x if k.startswith(("net.", "ema."))]
    assert keys and set(keys) <= set(y)
    return max(float((x[k].float() - y[k].float()).abs().max()) for k in keys)


def test_two_processes_equal_one_and_resume(tmp_path):
    out = train(tmp_path / "ddp", 4, procs=2)
    assert out.count("model saved") == 1  # only rank 0 reports and writes
    train(tmp_path / "single", 4)
    assert max_weight_difference(tmp_path / "ddp", tmp_path / "single") < 1e-5
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
