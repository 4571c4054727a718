"""Hypothesis strategies for the end-to-end fuzz of issue 26: every CLI command's arguments and
every studio endpoint's body.  Shared by tests/cli/test_fuzz_commands.py and
tests/studio/test_fuzz_studio.py (small budget, in-process) and bench/probe.py (large budget,
subprocesses with a timeout).

A CLI case is a command's tiny, valid base argv with one to three of its arguments replaced by
drawn values.  Each drawn value knows whether it is valid (``True``), invalid (``False``: the command
must refuse it, exit non-zero) or unknown (``None``: any clean end will do).  Arguments written
``@name`` are paths inside the case's own folder; ``files`` holds the input files to write there
first (bytes, or ``"model:tabular"`` for a folder the harness prepares once).

The strategies live by concern: ``values`` (drawn values and input files), ``commands`` (the CLI
command table and its cases), ``studio`` (endpoint bodies) and ``running`` (materialising a case,
running it with a time bound and judging the outcome).
"""

from hypothesis import strategies as st  # tests draw through fuzz_cases.st

from .commands import COMMANDS, Command, cli_cases
from .running import Hang, changed, materialize, prepare, run_in_process, verdict
from .studio import GET_PATHS, json_safe, studio_cases, studio_fields
from .values import Case, Value

__all__ = ["st", "COMMANDS", "Command", "cli_cases", "Hang", "changed", "materialize", "prepare", "run_in_process",
           "verdict", "GET_PATHS", "json_safe", "studio_cases", "studio_fields", "Case", "Value"]
