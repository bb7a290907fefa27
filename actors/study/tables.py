"""A study's tables: CSV files of plain rows, medians with their ranges, rich tables on screen."""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from brain.atomic import atomic_write


@dataclass(frozen=True)
class Spread:
    """The median of some measurements and their range."""

    median: float
    low: float
    high: float
    count: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        data = [v for v in values if not math.isnan(v)]
        if not data:
            return cls(math.nan, math.nan, math.nan, 0)
        return cls(statistics.median(data), min(data), max(data), len(data))

    def text(self, digits: int = 2, unit: str = "") -> str:
        """``median (low–high)``, or only the median when there is one measurement."""
        if self.count <= 1:
            return f"{self.median:.{digits}f}{unit}"
        return f"{self.median:.{digits}f}{unit} ({self.low:.{digits}f}–{self.high:.{digits}f})"


def group(
    rows: Iterable[dict[str, Any]], key: Callable[[dict[str, Any]], Any]
) -> dict[Any, list[dict[str, Any]]]:
    """Rows by ``key(row)``, in order of first appearance."""
    groups: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    return groups


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    """Write ``rows`` (all with the same keys) as a comma-separated table with a header, atomically.

    Floats are written in full (``repr``), infinities as ``inf``.  A file that cannot
    be written is a ``UserError`` naming it.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if rows:
        writer.writerow(rows[0])
        writer.writerows([[_cell(value) for value in row.values()] for row in rows])
    atomic_write(path, lambda handle: handle.write(buffer.getvalue().encode("utf-8")))
    return path


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


def show(console: Console, title: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print a table; numbers right-aligned."""
    table = Table(title=title, title_justify="left")
    for name in header:
        table.add_column(name, justify="left" if name == header[0] else "right")
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    console.print(table)


def report(
    console: Console,
    path: Path,
    title: str,
    tables: Sequence[tuple[str, Sequence[str], Sequence[Sequence[Any]]]],
) -> Path:
    """Print each (heading, header, rows) table; write them all to ``path`` in Markdown under ``title``."""
    parts = [f"{title}\n"]
    for heading, header, rows in tables:
        show(console, f"{heading}: {title}", header, rows)
        parts.append(f"{heading}\n\n{markdown(header, rows)}")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def markdown(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """The same table in Markdown, for READMEs and reports."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
