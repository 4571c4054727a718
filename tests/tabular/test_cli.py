"""``diffusio tabular`` on a real bundled table, its errors (nothing written), and resume after a kill."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from diffusio.cli.main import main

TINY = ["--width", "32", "--depth", "1", "--quiet"]


@pytest.mark.slow
def test_fit_sample_report_on_a_real_table(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["tabular", "fit", "breast-cancer", "--out", str(run), "--steps", "40", "--cooldown", "0.5", *TINY]) == 0
    assert (run / "model.safetensors").is_file() and (run / "config.json").is_file()
    assert json.loads((run / "config.json").read_text())["settings"]["cooldown"] == 0.5
    out = tmp_path / "synth.csv"
    assert main(["tabular", "sample", str(run), "-n", "64", "-o", str(out), "--condition", "diagnosis=malignant"]) == 0
    rows = pd.read_csv(out)
    assert len(rows) == 64 and (rows.diagnosis == "malignant").all()
    holdout = tmp_path / "holdout.csv"
    from diffusio.tabular import load_table

    load_table("breast-cancer")[0].sample(100, random_state=0).to_csv(holdout, index=False)
    html = tmp_path / "report.html"
    assert main(["tabular", "report", str(run), "--real", "breast-cancer", "--holdout", str(holdout),
                 "-o", str(html), "-n", "200"]) == 0
    text = html.read_text()
    assert text.count("<img") == 2 and "ML efficacy" in text and "DCR check" in text
    assert "quality" in capsys.readouterr().out


def test_fit_names_the_columns_it_recomputes(tmp_path, capsys):
    df = pd.DataFrame({"minutes": [float(i % 37) + 0.5 for i in range(80)], "kind": ["a", "b"] * 40})
    df["charge"] = (df["minutes"] * 0.25).round(2)
    df.to_csv(tmp_path / "calls.csv", index=False)
    assert main(["tabular", "fit", str(tmp_path / "calls.csv"), "--out", str(tmp_path / "r"), "--steps", "2", *TINY]) == 0
    assert "recomputed from its source after sampling: charge = round(0.25 x minutes, 2)" in capsys.readouterr().out
    assert main(["tabular", "fit", str(tmp_path / "calls.csv"), "--out", str(tmp_path / "r2"), "--steps", "2",
                 "--no-derive", *TINY]) == 0
    assert "recomputed" not in capsys.readouterr().out


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


@pytest.mark.parametrize("make, extra, message", [
    (lambda d: write(d / "e.csv", ""), [], "is empty"),
    (lambda d: write(d / "b.csv", b"\xff\xfe\x00garbage\x00\xff"), [], "cannot read"),
    (lambda d: write(d / "one.csv", "a,b\n1,x\n"), [], "1 row"),
    (lambda d: write(d / "t.csv", "a,b\n1,x\n2,y\n"), ["--target", "income"], "target column 'income'"),
    (lambda d: write(d / "m.csv", "a,b\n1,\n2,\n"), [], "'b' is missing in every row"),
    (lambda d: d / "absent.csv", [], "is not a file"),
])
def test_bad_tables_exit_2_and_write_nothing(tmp_path, capsys, make, extra, message):
    source = make(tmp_path)
    assert main(["tabular", "fit", str(source), "--out", str(tmp_path / "run"), "--steps", "2", *TINY, *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def wine_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("wine") / "run"
    assert main(["tabular", "fit", "wine", "--out", str(run), "--steps", "20", *TINY]) == 0
    return run


def test_bad_condition_and_existing_output_are_refused(wine_run, tmp_path, capsys):
    out = tmp_path / "s.csv"
    assert main(["tabular", "sample", str(wine_run), "-o", str(out), "--condition", "cultivar=cultivar_9"]) == 2
    assert "never saw that value" in capsys.readouterr().err and not out.exists()
    assert main(["tabular", "sample", str(wine_run), "-o", str(out), "--condition", "cultivar"]) == 2
    assert "COLUMN=VALUE" in capsys.readouterr().err
    out.write_text("keep me")
    assert main(["tabular", "sample", str(wine_run), "-o", str(out)]) == 2
    assert out.read_text() == "keep me"
    assert main(["tabular", "fit", "wine", "--out", str(wine_run), "--steps", "2", *TINY]) == 2
    assert "already holds a model" in capsys.readouterr().err


def test_sample_in_bf16_from_the_cli(wine_run, tmp_path):
    fast, exact = tmp_path / "fast.csv", tmp_path / "exact.csv"
    assert main(["tabular", "sample", str(wine_run), "-n", "30", "-o", str(fast), "--bf16", "on"]) == 0
    assert main(["tabular", "sample", str(wine_run), "-n", "30", "-o", str(exact)]) == 0
    a, b = pd.read_csv(fast), pd.read_csv(exact)
    assert list(a.columns) == list(b.columns) and len(a) == 30 and not a.equals(b)
    with pytest.raises(SystemExit):  # argparse: exit 2 with the choices named
        main(["tabular", "sample", str(wine_run), "-o", str(tmp_path / "x.csv"), "--bf16", "maybe"])


def test_sample_with_guidance_in_an_interval_from_the_cli(wine_run, tmp_path):
    """--guidance-interval LO,HI reaches the model: spanning every noise level it is plain guidance."""
    rows = {}
    for name, extra in {"all": ["--guidance-interval", "all"], "plain": [], "mid": ["--guidance-interval", "1,10"]}.items():
        out = tmp_path / f"{name}.csv"
        assert main(["tabular", "sample", str(wine_run), "-n", "30", "-o", str(out), "--guidance", "3", *extra]) == 0
        rows[name] = pd.read_csv(out)
    assert rows["all"].equals(rows["plain"]) and not rows["mid"].equals(rows["plain"])
    with pytest.raises(SystemExit):  # argparse: exit 2, the form named
        main(["tabular", "sample", str(wine_run), "-o", str(tmp_path / "x.csv"), "--guidance-interval", "10,1"])


def test_label_check_from_the_cli(wine_run, tmp_path, capsys):
    """`sample` says how many rows the label check drew again; --redraws 0 turns it off, --redraw-below
    moves its bar, and `fit --no-label-check` fits none (the same rows as --redraws 0)."""
    rows = {}
    for name, extra in {"checked": [], "off": ["--redraws", "0"], "strict": ["--redraw-below", "0.9"]}.items():
        out = tmp_path / f"{name}.csv"
        assert main(["tabular", "sample", str(wine_run), "-n", "200", "-o", str(out), *extra]) == 0
        rows[name], said = pd.read_csv(out), capsys.readouterr().out
        assert ("label check:" in said) == (name != "off"), said
    assert not rows["checked"].equals(rows["off"]) and not rows["strict"].equals(rows["checked"])
    bare = tmp_path / "bare"
    assert main(["tabular", "fit", "wine", "--out", str(bare), "--steps", "20", "--no-label-check", *TINY]) == 0
    assert main(["tabular", "sample", str(bare), "-n", "200", "-o", str(tmp_path / "bare.csv")]) == 0
    assert "label check" not in capsys.readouterr().out
    assert pd.read_csv(tmp_path / "bare.csv").equals(rows["off"])
    assert main(["tabular", "sample", str(wine_run), "-o", str(tmp_path / "x.csv"), "--redraws", "21"]) == 2
    assert "redraws must be a whole number from 0 to 20" in capsys.readouterr().err


@pytest.mark.slow
def test_resume_after_a_kill_matches_an_uninterrupted_run(tmp_path):
    cmd = [sys.executable, "-m", "diffusio", "tabular", "fit", "wine", "--steps", "600", "--every", "20", *TINY]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed = subprocess.Popen([*cmd, "--out", str(tmp_path / "a")], env=env)
    deadline = time.time() + 120
    while not (tmp_path / "a" / "train_state.json").exists() and time.time() < deadline:
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL
    subprocess.run([*cmd, "--out", str(tmp_path / "a"), "--resume"], env=env, check=True)
    subprocess.run([*cmd, "--out", str(tmp_path / "b")], env=env, check=True)
    from diffusio.tabular import TableDiffusion

    a, b = TableDiffusion.load(tmp_path / "a"), TableDiffusion.load(tmp_path / "b")
    assert a.run.step == b.run.step == 600
    pd.testing.assert_frame_equal(a.sample(40, seed=0), b.sample(40, seed=0))
