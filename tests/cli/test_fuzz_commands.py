"""Issue 26, done-when: an end-to-end fuzz over every command's arguments.

Each case is a command's tiny valid call with one to three arguments replaced by drawn values
(tests/fuzz_cases/), run in-process through ``diffusio.cli.main.main``.  It must end within
BOUND seconds with exit 0 or a one-line error (exit 2), never a traceback; an invalid value must
never exit 0; and no input file may change.  The same strategies run at a large budget, as
subprocesses, in ``bench/probe.py``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fuzz_cases  # noqa: E402

BOUND = 30.0  # seconds: every valid call here is tiny (one step, one image, five trials)
HEAVY = {name for name, command in fuzz_cases.COMMANDS.items() if command.heavy}  # invalid values only here
# derandomize: CI draws the same cases every run (a red CI names a bug, not luck); bench/probe.py explores
# with --seed. No shrinking: a hang costs BOUND each time.
CI = settings(max_examples=3, deadline=None, database=None, phases=[Phase.generate], derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                     HealthCheck.filter_too_much])


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return tmp_path_factory.mktemp("prepared")


def check(case: fuzz_cases.Case, prepared: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="diffusio-fuzz-") as tmp:
        argv, digests = fuzz_cases.materialize(case, Path(tmp) / "case", prepared)
        code, err, hang, seconds = fuzz_cases.run_in_process(argv, BOUND)
        lost = fuzz_cases.changed(digests)
        outcome = fuzz_cases.verdict(case, code, err, hang, lost)
    assert outcome in ("success", "clean error"), f"{outcome} after {seconds:.1f} s: {argv}\n{err[-3000:]}"
    if code == 2:
        assert len(err.strip().splitlines()[-1]) < 1000


def test_every_command_and_option_is_drawn():
    """A new command or option must get a strategy in tests/fuzz_cases/commands.py."""
    import argparse

    from diffusio.cli.main import build_parser

    leaves = {}

    def walk(parser, words):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            leaves[" ".join(words)] = [set(a.option_strings) for a in parser._actions
                                       if a.option_strings and a.nargs != 0 and a.dest != "help"]
        for action in subs:
            for name, sub in action.choices.items():
                walk(sub, words + (name,))

    walk(build_parser(), ())
    drawn = {}
    for name, command in fuzz_cases.COMMANDS.items():
        leaf = "spread simulate" if name.startswith("spread simulate ") else name
        drawn.setdefault(leaf, set()).update(command.options)
    assert set(leaves) == set(drawn), set(leaves) ^ set(drawn)
    untested = {name: sorted(max(o) for o in options if not o & drawn[name]) for name, options in leaves.items()}
    # left out on purpose: Dask clusters, resuming, GPUs, servers' hosts, and files that only add a second output
    allowed = {"--workers", "--scheduler", "--resume", "--init", "--device", "--test", "--captions", "--prompt-b",
               "--host", "--directed", "--holdout", "--target", "--picture", "--json", "--format", "--class-from",
               "--strip", "--gif", "--data", "--out", "--output"}
    assert not {name: [o for o in opts if o not in allowed] for name, opts in untested.items()
                if any(o not in allowed for o in opts)}


@pytest.mark.slow  # about 2 minutes for all commands: in `make test`, not in the inner loop
@pytest.mark.parametrize("name", sorted(fuzz_cases.COMMANDS))
@CI
@given(data=fuzz_cases.st.data())
def test_command_end_to_end(prepared, name, data):
    check(data.draw(fuzz_cases.cli_cases(names=[name], invalid_only=HEAVY), label="case"), prepared)
