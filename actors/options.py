"""The command line's options that more than one command takes, and the types of their values.

``run`` and ``check`` take the same options (``batch_options``); ``measure`` passes
options on to ``run`` and must know which directives they set (``run_overrides``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from actors.vocabulary import ExecutorName
from brain.errors import shorten

REPO = Path(__file__).resolve().parent.parent


def capacity(text: str) -> str:
    if text.strip().lower() in ("unbounded", "inf"):
        return "unbounded"
    wrong = argparse.ArgumentTypeError(f"{shorten(text)!r} is not a capacity (0, 1, 2, … or unbounded)")
    try:
        value = int(text)
    except ValueError:
        raise wrong from None
    if value < 0:
        raise wrong
    return str(value)


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{shorten(text)!r} is not a positive integer")
    return value


def batch_options(command: argparse.ArgumentParser) -> None:
    """The options ``run`` and ``check`` share: the batch, what overrides it, where the log goes."""
    command.add_argument("batch", type=Path, help="the batch file")
    command.add_argument("--executor", choices=ExecutorName.spellings(), help="override Executor")
    command.add_argument("--parallel", type=positive, help="override Parallel")
    command.add_argument("--data-capacity", type=capacity, help="override DataChannelCapacity")
    command.add_argument("--output-capacity", type=capacity, help="override OutputChannelCapacity")
    command.add_argument("--log-dir", type=Path, default=REPO / "logs", help="folder of the JSON logs")
    command.add_argument("--no-log", action="store_true", help="write no JSON log")
    command.add_argument(
        "--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
        help="a directive applied before every pass, over the file's (repeatable), e.g. --set Merge=Mean",
    )  # fmt: skip
    root_option(command)


def root_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root", type=Path, metavar="DIR",
        help="resolve paths starting with '.' against DIR and other relative paths against the working "
        "folder, as the Go program did (default: every relative path against the batch file's folder)",
    )  # fmt: skip


def overrides(args: argparse.Namespace) -> list[str]:
    """The ``Key: value`` lines ``run``'s options apply over the batch file."""
    shortcuts = (
        ("Executor", args.executor),
        ("Parallel", args.parallel),
        ("DataChannelCapacity", args.data_capacity),
        ("OutputChannelCapacity", args.output_capacity),
    )
    return [f"{key}: {value}" for key, value in shortcuts if value is not None] + args.settings


def run_overrides(batch: Path, options: Sequence[str]) -> list[str]:
    """The ``Key: value`` lines that ``run BATCH OPTIONS…`` would apply over the batch file.

    Options ``run`` does not take end the program with argparse's usage message.
    """
    parser = argparse.ArgumentParser(prog="python -m actors run")
    batch_options(parser)
    run_options(parser)
    return overrides(parser.parse_args([str(batch), *options]))


def run_options(command: argparse.ArgumentParser) -> None:
    """The options only ``run`` takes."""
    command.add_argument("--quiet", action="store_true", help="no progress bars")
    command.add_argument(
        "--resume", action="store_true", help="continue an interrupted run from its checkpoint"
    )
