"""Issue 26: every flag of every command, fed any text, is either accepted or refused by argparse
with a one-line error (exit 2) -- never an exception from inside a type converter."""

from __future__ import annotations

import argparse

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffusio.cli.main import build_parser

TEXT = st.one_of(st.text(max_size=30), st.sampled_from(["", "-1", "0", "1e400", "nan", "inf", "-inf", "1,2", "a=b",
                                                          "0x10", "9" * 40, "1.5", " 3 ", "\x00", "\u00e9"]))


def typed_options() -> list[tuple[tuple[str, ...], argparse.Action]]:
    """(command words, action) for every option with a converter or choices, in every (sub)command."""
    found = []

    def walk(parser: argparse.ArgumentParser, words: tuple[str, ...]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, words + (name,))
            elif action.option_strings and (action.type is not None or action.choices) and action.nargs != 0:
                found.append((words, action))

    walk(build_parser(), ())
    return found


OPTIONS = typed_options()


def _parsers() -> dict[tuple[str, ...], argparse.ArgumentParser]:
    out = {}

    def walk(parser, words):
        out[words] = parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, words + (name,))

    walk(build_parser(), ())
    return out


PARSERS = _parsers()


def test_the_walk_sees_every_command_group():
    groups = {words[0] for words, _ in OPTIONS}
    assert {"generate", "train", "spread", "tabular", "molecules", "serve"} <= groups
    assert len(OPTIONS) > 100


@pytest.mark.parametrize("words, action", OPTIONS, ids=[" ".join(w) + " " + a.option_strings[-1] for w, a in OPTIONS])
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=TEXT)
def test_any_text_for_any_flag_is_parsed_or_refused_cleanly(words, action, value):
    sub = PARSERS[words]
    try:  # argparse turns ArgumentError (and a converter's ValueError/TypeError) into "error: ..." + exit 2;
        sub._get_values(action, [value] if action.nargs in (None, "?", 1, "+", "*") else [value] * action.nargs)
    except argparse.ArgumentError:  # anything else escaping here would be a traceback for the user
        pass
