"""The command line's options: each one described in ``--help``, flags that need each other refused alone."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_study_support import cli

from actors.cli import _joined, _parser


def arguments(parser: argparse.ArgumentParser, command: str = "") -> Iterator[tuple[str, argparse.Action]]:
    """(command, argument) for every argument of every command and subcommand, walked from ``parser``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                yield from arguments(subparser, f"{command} {name}".strip())
        else:
            yield command, action


def test_every_option_of_every_command_has_a_description() -> None:
    found = list(arguments(_parser()))
    assert {"run", "check", "measure", "data csv", "bench channels", "logs", "plot", "predict"} <= {
        command for command, _ in found
    }
    missing = [
        f"{command} {'/'.join(action.option_strings) or action.dest}"
        for command, action in found
        if not (action.help or "").strip() or action.help == argparse.SUPPRESS
    ]
    assert missing == []


def test_every_command_has_a_description() -> None:
    def commands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, str | None]]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                described = {choice.dest: choice.help for choice in action._choices_actions}
                for name, subparser in action.choices.items():
                    yield name, described.get(name)
                    yield from commands(subparser)

    assert [name for name, text in commands(_parser()) if not text] == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--idx", "images.idx"], "--idx needs --index N"),
        (["--index", "3"], "--index needs --idx FILE"),
    ],
)
def test_idx_and_index_are_refused_one_without_the_other(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    code, out, err = cli(capsys, "predict", "--persistence", tmp_path / "net.npz", *options)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and message in err


def test_a_run_option_that_looks_like_an_option_is_taken_as_the_value_of_run_option() -> None:
    given = ["measure", "b.txt", "--run-option", "--quiet", "--run-option=--executor=thread", "--repeat", "2"]
    assert _joined(given) == [
        "measure", "b.txt", "--run-option=--quiet", "--run-option=--executor=thread", "--repeat", "2"
    ]  # fmt: skip
    assert _parser().parse_args(_joined(given)).run_options == ["--quiet", "--executor=thread"]
    last = ["measure", "b.txt", "--run-option"]
    assert _joined(last) == last  # nothing to join: argparse says what is missing
