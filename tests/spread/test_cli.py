import argparse
import json

import pytest

from diffusio.cli import spread as spread_cli
from diffusio.errors import UsageError


def run(argv):
    parser = argparse.ArgumentParser(prog="diffusio")
    spread_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_simulate_writes_png_and_prints_summary(tmp_path, capsys):
    out = tmp_path / "curve.png"
    code = run(["spread", "simulate", "--graph", "karate", "--model", "sir", "--beta", "0.05", "--gamma", "0.1",
                "--trials", "50", "--seed", "0", "-o", str(out)])
    assert code == 0 and out.read_bytes()[:4] == b"\x89PNG"
    assert "final" in capsys.readouterr().out


def test_simulate_json_on_edge_list(tmp_path, capsys):
    edges = tmp_path / "edges.csv"
    edges.write_text("a,b\nb,c\n")
    assert run(["spread", "simulate", "--graph", str(edges), "--model", "ic", "--p", "1", "--seeds", "a",
                "--trials", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["final"]["active"]["mean"] == 3.0 and report["nodes"] == 3


def test_datasets_lists_karate(capsys):
    assert run(["spread", "datasets"]) == 0
    assert "karate" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--model", "ic", "--beta", "0.1"], "does not apply"),
    (["--model", "sir", "--seeds", "nobody"], "integers"),
    (["--model", "sir", "--seeds", "999"], "not in the graph"),
    (["--model", "ic", "--p", "2"], "p must be"),
    (["--model", "sir", "-o", "curve.jpg"], "must end in .png"),
])
def test_bad_input_is_a_usage_error_and_writes_nothing(tmp_path, argv, message, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match=message):
        run(["spread", "simulate", "--graph", "karate", "--trials", "2", *argv])
    assert list(tmp_path.iterdir()) == []


def test_failed_run_keeps_existing_output(tmp_path):
    out = tmp_path / "keep.png"
    out.write_bytes(b"old")
    with pytest.raises(UsageError):
        run(["spread", "simulate", "--graph", "karate", "--model", "sir", "--seeds", "999", "-o", str(out)])
    assert out.read_bytes() == b"old"


def test_help_has_example(capsys):
    with pytest.raises(SystemExit):
        run(["spread", "simulate", "--help"])
    assert "Example" in capsys.readouterr().out


def test_main_entry_point_exits_2_on_bad_input(capsys):
    main = pytest.importorskip("diffusio.cli.main")
    assert main.main(["spread", "simulate", "--graph", "nowhere.csv", "--model", "sir"]) == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.slow
def test_ctrl_c_stops_a_long_simulation_promptly():
    """Issue 26.1: event-driven runs ignored Ctrl-C; now the CLI stops within seconds, exit 130."""
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "diffusio", "spread", "simulate", "--graph", "karate", "--model",
                             "sis-ct", "--beta", "1e6", "--gamma", "1", "--trials", "20000", "--max-steps", "10"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            # a suite started with '&' by a shell ignores SIGINT and its children inherit
                            # that: give the command the Ctrl-C a user's terminal would
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    import psutil

    try:
        # wait for 6 s of CPU (imports, compilation, then trials), however busy the machine is
        deadline = time.time() + 180
        while sum(psutil.Process(proc.pid).cpu_times()[:2]) < 6 and time.time() < deadline:
            time.sleep(0.5)
        assert proc.poll() is None  # 20,000 trials at 2,000,000 events each: minutes of work on any machine
        sent = time.time()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    finally:
        proc.kill()  # a failed check must not leave minutes of work running behind the tests
    # within seconds of the trials; a Ctrl-C during numba's first compilation waits for its end (about 10 s
    # on a busy machine with an empty cache): an interrupted compilation breaks numba
    assert code == 130 and time.time() - sent < 30, proc.stderr.read()
