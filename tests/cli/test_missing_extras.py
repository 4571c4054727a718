"""A command whose optional package is missing says which extra to install, with no traceback."""

import sys

import pytest

from diffusio.cli.main import main


@pytest.mark.parametrize("blocked, args, extra", [
    ("rdkit", ["molecules", "evaluate", "{tmp}/m.csv", "--no-fcd", "--reference-size", "10"], "molecules"),
    ("distributed", ["spread", "simulate", "--graph", "karate", "--model", "sir", "--beta", "0.1", "--gamma", "0.1",
                     "--trials", "5", "--workers", "2"], "cluster"),
    ("pyarrow", ["spread", "simulate", "--graph", "{tmp}/g.parquet", "--model", "sir", "--beta", "0.1", "--gamma",
                 "0.1", "--trials", "5"], "parquet"),
])
def test_missing_optional_package_names_the_extra(blocked, args, extra, tmp_path, monkeypatch, capsys):
    (tmp_path / "m.csv").write_text("smiles\nCCO\n")
    (tmp_path / "g.parquet").write_bytes(b"PAR1")
    for name in list(sys.modules):
        if name == blocked or name.startswith(blocked + "."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, blocked, None)  # import now fails as if it were not installed
    assert main([a.format(tmp=tmp_path) for a in args]) == 2
    err = capsys.readouterr().err
    assert f"pip install 'diffusio[{extra}]'" in err and "Traceback" not in err
