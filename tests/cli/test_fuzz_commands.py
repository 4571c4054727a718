"""Issue 26, done-when: an end-to-end fuzz over every command's arguments.

Each case is a command's tiny valid call with one to three arguments replaced by drawn values
(tests/fuzz_cases.py), run in-process through ``diffusio.cli.main.main``.  It must end within
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
CI = settings(max_examples=3, deadline=None, database=None, phases=[Phase.generate],  # no shrinking: a hang costs BOUND each time
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
    drawn = {name for name in fuzz_cases.COMMANDS}
    assert {"generate", "train", "spread simulate sir", "tabular sample", "video fill", "serve"} <= drawn
    assert sum(len(c.options) for c in fuzz_cases.COMMANDS.values()) > 250


@pytest.mark.parametrize("name", sorted(fuzz_cases.COMMANDS))
@CI
@given(data=fuzz_cases.st.data())
def test_command_end_to_end(prepared, name, data):
    check(data.draw(fuzz_cases.cli_cases(names=[name], invalid_only=HEAVY), label="case"), prepared)
