"""The rules of a valid data CSV, checked line by line to name the first line that breaks one.

The fast reader (``csvfile``) only learns *that* a file is malformed; this slow,
plain reading runs after it fails and says *where*.  A valid file has no header, one
record per line, the same number of ``,``-separated cells on every line, and every
cell a finite decimal number; blank lines may only trail at the end.
"""

from __future__ import annotations

import codecs
import re

import numpy as np

from brain.errors import DataError, shorten

ALLOWED_CELLS = "finite decimal numbers separated by ',', the same number on every line"
# Most data files hold only unsigned integers; such a line needs no per-cell check
# (up to 308 digits: a longer integer is beyond float64, infinite).
_PLAIN_INTEGERS = re.compile(rb"[0-9]{1,308}(?:,[0-9]{1,308})*\r?")


def find_csv_error(data: bytes, source: str) -> DataError | None:
    """The first broken rule in the CSV text ``data`` as a ``DataError`` naming
    ``source`` and the 1-based line; ``None`` if the text is valid."""
    lines = data.removeprefix(codecs.BOM_UTF8).split(b"\n")  # the fast parser skips a BOM too
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
    if b"\r" in line.rstrip(b"\r"):  # the fast parser starts a new record there
        return "a carriage return inside the line (lines end with '\\n' or '\\r\\n')"
    if line.count(b",") + 1 != width:
        return f"{line.count(b',') + 1} columns, but line 1 has {width}" + _separator_hint(line)
    if _PLAIN_INTEGERS.fullmatch(line):
        return None
    cells = line.rstrip(b"\r").split(b",")
    values = _values(cells)
    if values is None:
        return _first_non_number(cells, number)
    non_finite = np.flatnonzero(~np.isfinite(values))
    if len(non_finite):
        column = int(non_finite[0])
        return f"column {column + 1}: {_show(cells[column])} is not a finite number"
    return None


def _values(cells: list[bytes]) -> np.ndarray | None:
    """The cells of a line as numbers, ``None`` if one is not a number.

    numpy reads a whole line at once, but it takes ``1_000`` and ``1\\0`` for numbers,
    which the fast parser refuses; such lines go through ``_number`` cell by cell.
    """
    if any(b"_" in cell or b"\0" in cell for cell in cells):
        return None
    try:
        return np.array(cells).astype(np.float64)
    except ValueError:
        return None


def _number(cell: bytes) -> float:
    """A cell as the fast parser reads it; ``ValueError`` if it does not."""
    if b"_" in cell:  # float() reads digits grouped by '_'
        raise ValueError(cell)
    return float(cell)


def _first_non_number(cells: list[bytes], number: int) -> str:
    for column, cell in enumerate(cells):
        try:
            _number(cell)
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
    return repr(shorten(cell.decode("utf-8", "replace")))
