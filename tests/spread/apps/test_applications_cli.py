"""CLI smoke tests of the spread applications on small real graphs and data."""

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


def test_influence_imm_on_karate(capsys):
    assert run(["spread", "influence", "--graph", "karate", "--model", "ic", "--p", "0.05", "-k", "3", "--method",
                "imm", "--eval-trials", "200", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["seeds"]) == 3 and 33 in report["seeds"] and report["expected_spread"] > 3


def test_influence_k_too_large():
    with pytest.raises(UsageError, match="k must be"):
        run(["spread", "influence", "--graph", "karate", "-k", "40"])


def test_immunize_writes_plot(tmp_path, capsys):
    out = tmp_path / "imm.png"
    assert run(["spread", "immunize", "--graph", "florentine-families", "--budgets", "0,2", "--beta", "0.4",
                "--gamma", "0.2", "--trials", "50", "-o", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG" and "acquaintance" in capsys.readouterr().out


def test_fit_bass_cli(tmp_path, capsys):
    out = tmp_path / "bass.png"
    assert run(["spread", "fit", "--model", "bass", "--series",
                "96,195,238,380,1045,1230,1267,1828,1586,1673,1800,1580,1500", "-o", str(out), "--json"]) == 0
    params = {row["param"]: row for row in json.loads(capsys.readouterr().out)["params"]}
    assert 0 < params["p"]["estimate"] < 0.05 and 0.2 < params["q"]["estimate"] < 0.6 and out.exists()
    with pytest.raises(UsageError, match="at least"):
        run(["spread", "fit", "--series", "1,2,3"])


def test_recommend_eval_cli(capsys):
    pytest.importorskip("recbole")
    assert run(["spread", "recommend", "--data", "ml-100k", "--method", "hybrid", "--lam", "0.2", "--eval",
                "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert 0.05 < report["ranking_score"] < 0.106
    with pytest.raises(SystemExit):  # refused by the parser since issue 26: a one-line usage error
        run(["spread", "recommend", "--method", "hybrid", "--lam", "2", "--eval"])
    assert "--lam must be in [0, 1]" in capsys.readouterr().err


def test_debtrank_cli(tmp_path, capsys):
    exposures = tmp_path / "exposures.csv"
    exposures.write_text("lender,borrower,amount\nA,B,10\nB,C,5\n")
    equity = tmp_path / "equity.csv"
    equity.write_text("bank,equity\nA,20\nB,5\nC,1\n")
    out = tmp_path / "dr.png"
    assert run(["spread", "debtrank", "--exposures", str(exposures), "--equity", str(equity), "-o", str(out),
                "--json"]) == 0
    table = json.loads(capsys.readouterr().out)["table"]
    assert table[0]["bank"] == "C" and out.exists()
    square = tmp_path / "m.csv"
    square.write_text("0,1,2\n1,0,2\n")
    with pytest.raises(UsageError, match="square"):
        run(["spread", "debtrank", "--exposures", str(square), "--equity", "1,1"])


def test_spatial_grid_cli(tmp_path, capsys):
    out = tmp_path / "map.png"
    assert run(["spread", "spatial", "--graph", "grid:10x10", "--seeds", "0", "--steps", "20", "--at", "0,20",
                "-o", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG" and "step   20" in capsys.readouterr().out
