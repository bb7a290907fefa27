"""The console: one rich progress bar per pass and the thesis' one-line summary after it.

Text is printed as given.  Paths, values and messages come from the user's files
and flags, so nothing printed is read as rich markup or emoji codes (a ``:100:``
after a file name stays a line number); colour comes from ``style`` or from a
``rich.text.Text`` built by the caller.  Output to a pipe or a file is not
wrapped: a terminal wraps long lines itself, a pipe gets them whole.
"""

from __future__ import annotations

import errno
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:
    from actors.outcome import PassOutcome
    from actors.records.results import ResultRow

UNWRAPPED = 1_000_000  # columns of a console that is no terminal: wide enough never to wrap


class _Console(Console):
    """A rich console that leaves a closed pipe to ``actors.cli.main``.

    rich's own reaction exits with status 1 from wherever the write happened;
    raising ``BrokenPipeError`` lets the command end the way every other one does.
    """

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError(errno.EPIPE, "the reader of the output has gone")


def plain_console(stderr: bool = False) -> Console:
    """A console that prints text as given (no markup, emoji or highlighting), unwrapped unless a terminal."""
    console = _Console(stderr=stderr, markup=False, emoji=False, highlight=False)
    if not console.is_terminal:
        console.width = UNWRAPPED
    return console


class Screen:
    """Progress and summaries on stdout, errors on stderr; ``quiet`` keeps only summaries and errors."""

    def __init__(self, quiet: bool = False) -> None:
        self.console = plain_console()
        self.quiet = quiet

    @contextmanager
    def progress(self, title: str, total: int, testing: bool) -> Iterator[callable]:
        """A bar for one pass; yields ``advance(lines_done, correct)``."""
        if self.quiet or not self.console.is_terminal:
            yield lambda done, correct: None
            return
        # Here, not at the top: a quiet run or one into a pipe never draws a bar.
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns = [
            TextColumn("{task.description}", style="bold", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]:>9} lines/s", markup=False),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        ]
        if testing:
            columns.append(TextColumn("{task.fields[accuracy]}", style="cyan", markup=False))
        with Progress(*columns, console=self.console, transient=True) as bar:
            task = bar.add_task(title, total=total, rate="", accuracy="")

            def advance(done: int, correct: int) -> None:
                elapsed = bar.tasks[0].elapsed or 0.0
                rate = f"{done / elapsed:,.0f}" if elapsed > 0 else ""
                accuracy = f"{100.0 * correct / done:.2f} %" if testing and done else ""
                bar.update(task, completed=done, rate=rate, accuracy=accuracy)

            yield advance

    def line(self, text: str | Text, style: str | None = None) -> None:
        """One line on stdout: ``text`` as given, in ``style`` (e.g. "dim") if one is named."""
        self.console.print(text, style=style)

    def warning(self, text: str) -> None:
        """What the user probably did not mean, on stdout after a yellow "warning:"."""
        self.line(labelled("warning:", text))

    def error(self, text: str) -> None:
        plain_console(stderr=True).print(labelled("error:", text, "bold red"))


def note(text: str) -> None:
    """Something skipped or of little meaning, on stderr (stdout may be feeding another program)."""
    plain_console(stderr=True).print(labelled("note:", text))


def labelled(label: str, text: str, style: str = "yellow") -> Text:
    """``label`` in ``style``, then ``text`` as given: "warning: …", "note: …", "error: …"."""
    return Text.assemble((label, style), " ", text)


def short_path(path: str | os.PathLike[str]) -> str:
    """A path as the user would type it here: relative to the working folder when that is shorter."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
    return relative if len(relative) <= len(str(path)) else str(Path(path))


def pass_summary(mode: str, epoch: int, outcome: PassOutcome, row: ResultRow) -> Text:
    """The thesis' one line after a pass: its time and lines, and for a test pass its score."""
    if mode == "train":
        rate = outcome.lines / outcome.seconds if outcome.seconds > 0 else math.inf
        return Text.assemble(
            ("Train", "green"),
            f" epoch {epoch}: {outcome.seconds:.3f} s, {outcome.lines} lines "
            f"({rate:,.0f} lines/s), {outcome.rounds} rounds",
        )
    return Text.assemble(
        ("Test", "cyan"),
        f" after epoch {epoch}: {outcome.seconds:.3f} s, {outcome.lines} lines, "
        f"correct {row.correct} ({row.correct_percent:.2f} %), incorrect {row.incorrect}, "
        f"error rate {row.error_rate:.4f}",
    )
