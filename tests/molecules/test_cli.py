"""``diffusio molecules``: invalid SMILES reported by line, clear errors, resume after a kill."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from diffusio.cli.main import main

TINY = ["--width", "32", "--depth", "1", "--batch-size", "16", "--quiet"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("mol") / "run"
    assert main(["molecules", "train", "--out", str(out), "--limit", "300", "--steps", "10", *TINY]) == 0
    return out


def test_generate_and_evaluate(run, tmp_path, capsys):
    out, grid = tmp_path / "m.csv", tmp_path / "m.png"
    assert main(["molecules", "generate", "--model", str(run), "-n", "30", "-o", str(out), "--picture", str(grid),
                 "--steps", "4"]) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == ["smiles", "qed", "logp", "weight"] and len(table) == 30 and grid.stat().st_size
    assert main(["molecules", "evaluate", str(out), "--reference-size", "200", "--no-fcd"]) == 0
    assert '"valid": 1.0' in capsys.readouterr().out


def test_train_continues_a_shipped_model_and_refuses_a_size_beside_init(tmp_path, capsys):
    out = tmp_path / "cont"
    assert main(["molecules", "train", "--out", str(out), "--limit", "100", "--steps", "2", "--batch-size", "4",
                 "--init", "moses-small", "--quiet"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["init"]["model"] == "moses-small" and config["settings"]["width"] == 128
    assert main(["molecules", "train", "--out", str(tmp_path / "x"), "--steps", "2", "--init", "moses-small",
                 "--width", "64"]) == 2
    assert "brings its own size; leave out --width" in capsys.readouterr().err and not (tmp_path / "x").exists()
    assert main(["molecules", "train", "--out", str(tmp_path / "y"), "--limit", "50", "--steps", "2",
                 "--init", "no-such-model"]) == 2
    assert "no-such-model" in capsys.readouterr().err and not (tmp_path / "y").exists()


def test_invalid_lines_are_counted_and_named(tmp_path, capsys):
    path = tmp_path / "mix.smi"
    path.write_text("CCO\nnot_a_molecule\nc1ccccc1\nC1CC\n")
    assert main(["molecules", "evaluate", str(path), "--reference-size", "100", "--no-fcd"]) == 0
    out = capsys.readouterr().out
    assert "lines 2, 4" in out and '"valid": 0.5' in out


@pytest.mark.parametrize("content, extra, message", [
    ("", [], "is empty"), ("xyz\nqqq\n", [], "no valid SMILES"), (b"\x00\x01", [], "binary"),
])
def test_bad_files_are_clear_errors(tmp_path, capsys, content, extra, message):
    path = tmp_path / "in.smi"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert main(["molecules", "evaluate", str(path), "--no-fcd", *extra]) == 2
    assert message in capsys.readouterr().err


def test_bad_conditions_write_nothing(run, tmp_path, capsys):
    out = tmp_path / "c.csv"
    for condition, message in [("toxicity>1", "unknown property"), ("qed>5", "no training molecule"),
                               ("qed>>1", "not understood")]:
        assert main(["molecules", "generate", "--model", str(run), "-n", "5", "-o", str(out),
                     "--condition", condition]) == 2
        assert message in capsys.readouterr().err and not out.exists()


@pytest.mark.slow
def test_resume_after_a_kill_matches_an_uninterrupted_run(tmp_path):
    from diffusio.molecules import MoleculeDiffusion

    cmd = [sys.executable, "-m", "diffusio", "molecules", "train", "--limit", "200", "--steps", "30", "--every", "5",
           *TINY]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed = subprocess.Popen([*cmd, "--out", str(tmp_path / "a")], env=env)
    deadline = time.time() + 180
    while not (tmp_path / "a" / "train_state.json").exists() and time.time() < deadline:
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    subprocess.run([*cmd, "--out", str(tmp_path / "a"), "--resume"], env=env, check=True)
    subprocess.run([*cmd, "--out", str(tmp_path / "b")], env=env, check=True)
    a, b = MoleculeDiffusion.load(tmp_path / "a"), MoleculeDiffusion.load(tmp_path / "b")
    assert a.run.step == b.run.step == 30
    pd.testing.assert_frame_equal(a.sample(10, seed=0, steps=4), b.sample(10, seed=0, steps=4))


def test_the_shipped_model_generates_out_of_the_box(tmp_path, capsys):
    out = tmp_path / "shipped.csv"
    assert main(["molecules", "generate", "-n", "8", "-o", str(out), "--steps", "8", "--seed", "1"]) == 0
    from rdkit import Chem

    table = pd.read_csv(out)
    assert len(table) == 8 and all(Chem.MolFromSmiles(s) is not None for s in table.smiles)
    assert "100.0% valid" in capsys.readouterr().out
    fast = tmp_path / "fast.csv"
    assert main(["molecules", "generate", "-n", "8", "-o", str(fast), "--steps", "8", "--seed", "1", "--bf16", "on"]) == 0
    assert all(Chem.MolFromSmiles(s) is not None for s in pd.read_csv(fast).smiles)


def test_an_unknown_model_name_is_named(tmp_path, capsys):
    assert main(["molecules", "generate", "--model", "no-such-model", "-n", "2", "-o", str(tmp_path / "x.csv")]) == 2
    assert "moses-small" in capsys.readouterr().err
