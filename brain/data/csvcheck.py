"""The rules of a valid data CSV, checked line by line to name the first line that breaks one.

The fast reader (``csvfile``) only learns *that* a file is malformed; this slow,
plain reading runs after it fails and says *where*.  A valid file has no header, one
record per line, the same number of ``,``-separated cells on every line, and every
cell a finite decimal number; blank lines may only trail at the end.
"""

from __future__ import annotations

import re

import numpy as np

from brain.errors import DataError

ALLOWED_CELLS = "finite decimal numbers separated by ',', the same number on every line"
_SHOWN = 40
# Most data files hold only unsigned integers; such a line needs no per-cell check.
_PLAIN_INTEGERS = re.compile(rb"[0-9]+(?:,[0-9]+)*\r?")


def find_csv_error(data: bytes, source: str) -> DataError | None:
    """The first broken rule in the CSV text ``data`` as a ``DataError`` naming
    ``source`` and the 1-based line; ``None`` if the text is valid."""
    lines = data.split(b"\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        return DataError("the file is empty", where=source, allowed=ALLOWED_CELLS)
    width = len(lines[0].split(b","))
    for number, line in enumerate(lines, start=1):
        problem = _line_problem(line, width, number)
        if problem is not None:
            return DataError(problem, where=source, line=number, allowed=ALLOWED_CELLS)
    return None


def _line_problem(line: bytes, width: int, number: int) -> str | None:
    if not line.strip():
        return "empty line between records"
    if line.count(b",") + 1 != width:
        return f"{line.count(b',') + 1} columns, but line 1 has {width}" + _separator_hint(line)
    if _PLAIN_INTEGERS.fullmatch(line):
        return None
    cells = line.rstrip(b"\r").split(b",")
    try:
        values = np.array(cells).astype(np.float64)
    except ValueError:
        return _first_non_number(cells, number)
    non_finite = np.flatnonzero(~np.isfinite(values))
    if len(non_finite):
        column = int(non_finite[0])
        return f"column {column + 1}: {_show(cells[column])} is not a finite number"
    return None


def _first_non_number(cells: list[bytes], number: int) -> str:
    for column, cell in enumerate(cells):
        try:
            float(cell)
        except ValueError:
            hint = _separator_hint(cell)
            if not hint and number == 1 and cell.strip()[:1].isalpha():
                hint = " (a data file has no header line)"
            return f"column {column + 1}: {_show(cell)} is not a number{hint}"
    raise AssertionError("numpy rejected a row that float() accepts")  # pragma: no cover


def _separator_hint(text: bytes) -> str:
    for name, separator in (("';'", b";"), ("a tab", b"\t")):
        if separator in text:
            return f" (the separator must be ',', not {name})"
    return ""


def _show(cell: bytes) -> str:
    text = cell.decode("utf-8", "replace")
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "…")
