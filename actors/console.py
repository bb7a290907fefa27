"""The console: one rich progress bar per pass and the thesis' one-line summary after it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Screen:
    """Progress and summaries on stderr-free stdout; ``quiet`` keeps only summaries and errors."""

    def __init__(self, quiet: bool = False) -> None:
        self.console = Console(highlight=False)
        self.quiet = quiet

    @contextmanager
    def progress(self, title: str, total: int, testing: bool) -> Iterator[callable]:
        """A bar for one pass; yields ``advance(lines_done, correct)``."""
        if self.quiet or not self.console.is_terminal:
            yield lambda done, correct: None
            return
        columns = [
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]:>9} lines/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        ]
        if testing:
            columns.append(TextColumn("[cyan]{task.fields[accuracy]}"))
        with Progress(*columns, console=self.console, transient=True) as bar:
            task = bar.add_task(title, total=total, rate="", accuracy="")

            def advance(done: int, correct: int) -> None:
                elapsed = bar.tasks[0].elapsed or 0.0
                rate = f"{done / elapsed:,.0f}" if elapsed > 0 else ""
                accuracy = f"{100.0 * correct / done:.2f} %" if testing and done else ""
                bar.update(task, completed=done, rate=rate, accuracy=accuracy)

            yield advance

    def line(self, text: str) -> None:
        self.console.print(text)

    def error(self, text: str) -> None:
        Console(stderr=True, highlight=False).print(f"[bold red]error:[/] {escape(text)}", soft_wrap=True)


def short_path(path: str | os.PathLike[str]) -> str:
    """A path as the user would type it here: relative to the working folder when that is shorter."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
    return relative if len(relative) <= len(str(path)) else str(Path(path))
