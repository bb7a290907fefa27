"""The result table: one ``;``-separated row per pass, with a header on first write.

The thesis program's columns come first and in its order; the project's own
columns follow.  A new column is one new field of ``ResultRow`` (at the end, so
that the thesis' columns keep their places); files written with another set of
columns are refused rather than mixed.

Appending rewrites the whole file through ``brain.atomic`` (temp file, fsync,
rename): a crash leaves the old table or the new one, never half a row, and a
file that cannot be written is one ``UserError`` naming it.  The
cost, a copy of the table per pass, is small next to a pass.  One writer per
file: two processes appending at once could lose a row, so a run locks its
result files for as long as it runs (``actors.records.lock``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from actors.batchfile.parse import Pass
from actors.outcome import PassOutcome
from brain.atomic import atomic_write
from brain.errors import UserError, shorten
from brain.user_files import read_text

SEPARATOR = ";"


@dataclass(frozen=True)
class _Kind:
    """How a column's value is written and read back (an empty cell is None)."""

    write: Callable[[Any], str]
    read: Callable[[str], Any]


def _write_capacity(value: float) -> str:
    return "unbounded" if value == math.inf else str(int(value))


def _read_capacity(text: str) -> float:
    return math.inf if text == "unbounded" else int(text)


# int()/float() first: numpy scalars would otherwise write as "np.float64(0.8)".
INT = _Kind(lambda value: str(int(value)), int)
FLOAT = _Kind(lambda value: repr(float(value)), float)
TEXT = _Kind(str, str)
CAPACITY = _Kind(_write_capacity, _read_capacity)
# Tables written before the Go program's spelling was restored say Train/Test: read both.
MODE = _Kind(str, str.lower)
MODES = ("train", "test")


def column(header: str, kind: _Kind, default: Any = MISSING, **options: Any) -> Any:
    """A ``ResultRow`` field written under ``header``."""
    return field(default=default, metadata={"column": header, "kind": kind}, **options)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, kw_only=True)
class ResultRow:
    """One pass.  Times are seconds; test-only columns are None on training rows."""

    # The thesis program's columns, in its order.
    mode: str = column("Mode", MODE)  # "train" or "test", as the Go program wrote it
    cpus: int = column("CPUs", INT)
    parallel: int = column("Parallel", INT)
    worker_batch: int = column("WorkerBatch", INT)
    learning_rate: float = column("LearningRate", FLOAT)
    worker_setup_time: float = column("WorkerSetupTime", FLOAT)
    epoch_elapsed_time: float = column("EpochElapsedTime", FLOAT)
    epoch_lines: int = column("EpochLines", INT)
    total_elapsed_time: float = column("TotalElapsedTime", FLOAT)
    total_lines: int = column("TotalLines", INT)
    correct: int | None = column("Correct", INT, None)
    incorrect: int | None = column("Incorrect", INT, None)
    correct_percent: float | None = column("CorrectPercent", FLOAT, None)
    incorrect_percent: float | None = column("IncorrectPercent", FLOAT, None)
    error_rate: float | None = column("ErrorRate", FLOAT, None)
    # The project's columns.
    semantics: str = column("Semantics", TEXT)
    executor: str = column("Executor", TEXT)
    data_capacity: float = column("DataChannelCapacity", CAPACITY)
    output_capacity: float = column("OutputChannelCapacity", CAPACITY)
    epoch: int = column("Epoch", INT)
    seed: int = column("Seed", INT)
    timestamp: str = column("Timestamp", TEXT, default_factory=_now)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be 'train' or 'test', not {self.mode!r}")
        for cell in (self.semantics, self.executor, self.timestamp):
            if SEPARATOR in cell or "\n" in cell:
                raise ValueError(f"{cell!r} would break the table")

    def cells(self) -> list[str]:
        """The row as written: one string per column, empty for None."""
        return [
            "" if (value := getattr(self, f.name)) is None else f.metadata["kind"].write(value)
            for f in fields(self)
        ]

    def line(self) -> str:
        """The row as written to the table, without its newline."""
        return SEPARATOR.join(self.cells())


def row_of_pass(
    batch_pass: Pass, executor: str, total_seconds: float, total_lines: int, outcome: PassOutcome,
    setup_seconds: float, epoch: int,
) -> ResultRow:  # fmt: skip
    """The row of a finished pass: its settings, times and lines, and for a test pass its score."""
    settings = batch_pass.settings
    testing = batch_pass.mode == "test"
    lines = max(outcome.lines, 1)
    return ResultRow(
        mode=batch_pass.mode,
        cpus=os.cpu_count() or 1,
        parallel=settings.parallel,
        worker_batch=settings.worker_batch,
        learning_rate=settings.learning_rate,
        worker_setup_time=setup_seconds,
        epoch_elapsed_time=outcome.seconds,
        epoch_lines=outcome.lines,
        total_elapsed_time=total_seconds,
        total_lines=total_lines,
        correct=outcome.correct if testing else None,
        incorrect=outcome.lines - outcome.correct if testing else None,
        correct_percent=100.0 * outcome.correct / lines if testing else None,
        incorrect_percent=100.0 * (outcome.lines - outcome.correct) / lines if testing else None,
        error_rate=100.0 * outcome.error_sum / lines if testing else None,
        semantics=settings.semantics.recorded,
        executor=executor,
        data_capacity=settings.effective_data_capacity,
        output_capacity=settings.effective_output_capacity,
        epoch=epoch,
        seed=settings.seed,
    )


COLUMNS: tuple[str, ...] = tuple(f.metadata["column"] for f in fields(ResultRow))
HEADER = SEPARATOR.join(COLUMNS)
_KIND_OF: dict[str, _Kind] = {f.metadata["column"]: f.metadata["kind"] for f in fields(ResultRow)}


def append_result(path: str | Path, row: ResultRow) -> None:
    """Add ``row`` to the table at ``path``, writing the header first if the file is new or empty.

    A file whose header is not ``HEADER`` is a ``UserError`` naming the file and the
    differing columns; nothing is written then (see ``table_text``).  The file is
    replaced atomically, so an error or a crash during the write leaves the old
    table intact; a table that cannot be written (a full disk …) is a ``UserError``
    naming it and the system's reason.
    """
    path = Path(path)
    old = table_text(path)
    line = row.line() + "\n"
    if not old.strip():
        old = HEADER
    content = old + ("" if old.endswith("\n") else "\n") + line
    atomic_write(path, lambda handle: handle.write(content.encode("utf-8")))


def table_text(path: str | Path) -> str:
    """The text of the result table at ``path`` ("" when there is none yet), if our rows fit it.

    Raises ``UserError`` naming the file when it is not a regular file, cannot be
    read, is larger than ``brain.user_files.MAX_TEXT_BYTES``, or has a header other than
    ``HEADER`` (naming the differing columns).  A run asks this before its first
    pass, so that a table it could not append to is refused before any training.
    """
    path = Path(path)
    if not os.path.exists(path):
        return ""
    old = read_text(path, "result file")
    if old.strip():
        found = old.splitlines()[0].split(SEPARATOR)
        if found != list(COLUMNS):
            raise UserError(
                f"result file has other columns than this program writes: {_difference(found)}",
                where=path,
                line=1,
                allowed=f"a new ResultFile, or one whose header is {HEADER}",
            )
    return old


def _difference(found: list[str]) -> str:
    missing = [c for c in COLUMNS if c not in found]
    unexpected = [c for c in found if c not in COLUMNS]
    parts = []
    if missing:
        parts.append("missing " + ", ".join(missing))
    if unexpected:
        parts.append("unexpected " + shorten(", ".join(unexpected)))
    if not parts:
        at = next(i for i, (a, b) in enumerate(zip(found, COLUMNS, strict=False)) if a != b)
        parts.append(f"column {at + 1} is {shorten(found[at])} where {COLUMNS[at]} belongs")
    return "; ".join(parts)


def read_results(path: str | Path) -> list[dict[str, Any]]:
    """Every row of a result table as ``{header: value}``.

    Known columns come back typed (int, float, str, ``math.inf`` for an unbounded
    capacity, None for an empty cell); unknown columns as strings.  ``Mode`` comes
    back in lower case whatever the file says (``train``/``test``), so tables of the
    Go program (12 or 15 columns), of this program and of its versions that wrote
    ``Train``/``Test`` read alike; columns are found by the header, in any order.  A row whose
    cell count differs from the header's, or a cell that does not read as its
    column's type, is a ``UserError`` with the file and line.
    """
    path = Path(path)
    lines = read_text(path, "result file").splitlines()
    if not lines:
        return []
    header = lines[0].split(SEPARATOR)
    rows = []
    for number, text in enumerate(lines[1:], start=2):
        if not text.strip():
            continue
        cells = text.split(SEPARATOR)
        if len(cells) != len(header):
            raise UserError(f"row has {len(cells)} cells, the header {len(header)}", where=path, line=number)
        cells_by_name = zip(header, cells, strict=True)
        rows.append({name: _read_cell(name, cell, path, number) for name, cell in cells_by_name})
    return rows


def _read_cell(name: str, cell: str, path: Path, number: int) -> Any:
    if cell == "":
        return None
    kind = _KIND_OF.get(name, TEXT)
    try:
        return kind.read(cell)
    except ValueError:
        message = f"{shorten(name)} {shorten(cell)!r} is not readable"
        raise UserError(message, where=path, line=number) from None
