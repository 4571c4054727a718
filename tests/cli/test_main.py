"""The entry point: each command loads only its own module, and Ctrl-C is never a traceback."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest

from diffusio.cli import main


def test_the_command_table_names_what_each_module_registers():
    for name in main.MODULES:
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(f"diffusio.cli.{name}").register(sub)
        assert {c for c, m in main.COMMANDS.items() if m == name} == set(sub.choices), name
    assert set(main.COMMANDS.values()) == set(main.MODULES)


def test_one_command_builds_only_its_own_parser():
    only = main.build_parser("spread")
    (group,) = [a for a in only._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(group.choices) == {"spread"}
    full = main.build_parser()
    (group,) = [a for a in full._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(group.choices) == set(main.COMMANDS)


@pytest.mark.parametrize("argv, absent", [(["spread", "simulate", "--help"], "torch"),
                                          (["tabular", "--help"], "numba")])
def test_a_command_does_not_import_the_other_pillar(argv, absent):
    code = ("import sys; from diffusio.cli.main import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            f"print({absent!r} in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr[-2000:]


def test_an_unknown_command_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main.main(["genrate"])
    err = capsys.readouterr().err
    assert "generate" in err and "spread" in err


def test_bash_completion_completes_commands_and_flags(tmp_path, capsys):
    """``diffusio completion bash`` prints a script that bash sources and that completes a command,
    a sub-command and a flag."""
    assert main.main(["completion", "bash"]) == 0
    script = tmp_path / "diffusio.bash"
    script.write_text(capsys.readouterr().out)
    probe = (f"source {script}\n"
             "complete() { COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1)); _shtab_diffusio; echo \"${COMPREPLY[*]}\"; }\n"
             "complete diffusio gen\ncomplete diffusio spread sim\ncomplete diffusio generate --guidance-i\n")
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.stdout.split("\n")[:3] == ["generate", "simulate", "--guidance-interval"], out.stderr
    with pytest.raises(SystemExit):
        main.main(["completion", "fish"])  # not a choice: argparse refuses it
