"""The wheel: built from the checkout, installed into a fresh venv outside the repository, it runs
the two commands README promises (the shipped weights travel inside it)."""

import os
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_repository(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", str(ROOT), "--no-deps", "--no-build-isolation",
                    "-w", str(dist)], check=True, capture_output=True, timeout=600)
    wheel, = dist.glob("diffusio-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for weights in ("generative/weights/fashion/model.safetensors", "video/weights/moving-fashion/model.safetensors",
                    "video/weights/moving-fashion/motion_guide.safetensors",
                    "molecules/weights/moses-small/model.safetensors", "studio/static/index.html"):
        assert f"diffusio/{weights}" in names, weights
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    # the dependencies come from this environment (a plain path entry: its own .pth files, among them
    # the editable install of the checkout, are not run), diffusio itself only from the wheel
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    deps = [sysconfig.get_paths()["purelib"], *site.getsitepackages()]
    Path(purelib, "deps.pth").write_text("\n".join(dict.fromkeys(deps)) + "\n")
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True,
                   capture_output=True, timeout=600)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": "", "DIFFUSIO_CACHE": str(tmp_path / "cache")}
    run = lambda *args: subprocess.run([str(venv / "bin" / "diffusio"), *args], cwd=work, env=env,  # noqa: E731
                                       capture_output=True, text=True, timeout=600)
    where = subprocess.run([str(py), "-c", "import diffusio; print(diffusio.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, check=True).stdout
    assert str(venv) in where and str(ROOT) not in where
    done = run("generate", "a bag", "-n", "2", "--steps", "4", "-o", "bag.png")
    assert done.returncode == 0, done.stderr[-2000:]
    assert (work / "bag.png").stat().st_size > 0
    done = run("spread", "simulate", "--graph", "karate", "--model", "sir", "--beta", "0.05", "--gamma", "0.1",
               "--trials", "50", "--seed", "0")
    assert done.returncode == 0 and "final" in done.stdout, done.stderr[-2000:]
    version = subprocess.run([str(py), "-m", "diffusio", "--version"], cwd=work, env=env, capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("diffusio ")
