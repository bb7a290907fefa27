"""The thesis' data CSV: ``target…,input…`` per line, no header, numbers only.

MNIST in this form is ``label,pixel0,...,pixel783`` with pixels 0..255.  Reading uses
pyarrow's multi-threaded parser (the 110 MB MNIST training file in about a second);
when it rejects a file, ``csvcheck`` names the line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from brain.atomic import atomic_open
from brain.data.csvcheck import ALLOWED_CELLS, find_csv_error
from brain.data.dataset import Dataset
from brain.errors import DataError
from brain.user_files import read_bytes

_WHITESPACE = b" \t\r\n"
# The text is parsed in memory whole (whether it fits is checked before a run); the
# cap keeps a file named by mistake, e.g. a disk image, from being read at all.
MAX_CSV_BYTES = 16 * 2**30


def read_csv(path: str | Path, target_start: int = 0, target_end: int = 1) -> Dataset:
    """Parse a data CSV: columns ``[target_start, target_end)`` are the targets, every
    column from ``target_end`` on is an input; columns before ``target_start`` are read
    but unused.

    Inputs are ``uint8`` when every input value is an integer 0..255, else ``float64``;
    targets are ``float64``.  Record ``k`` is line ``k``.  Raises ``DataError`` naming
    the file -- and the line, where there is one -- for a missing, special (a FIFO, a
    device, a directory), larger than ``MAX_CSV_BYTES`` or empty file, a
    blank line between records, a line with a different number of cells, a cell that
    is not a finite number (a wrong separator shows up here), and target columns
    outside the data or leaving no input column.
    """
    path = Path(path)
    source = str(path)
    data = read_bytes(path, "file", DataError, limit=MAX_CSV_BYTES)
    end = len(data)
    while end and data[end - 1] in _WHITESPACE:
        end -= 1
    if end == 0:
        raise DataError("the file is empty", where=source, allowed=ALLOWED_CELLS)
    first_line_end = data.find(b"\n", 0, end)
    n_columns = data.count(b",", 0, end if first_line_end < 0 else first_line_end) + 1
    table = _parse(_records(data, end), n_columns, target_start, target_end)
    if (
        table is None
        or table.num_rows != data.count(b"\n", 0, end) + 1  # a blank line between records
        or not _all_finite(table)
    ):
        raise _explain(data, source)
    _check_target_columns(source, n_columns, target_start, target_end)
    targets = _matrix(table, range(target_start, target_end), np.float64)
    input_columns = range(target_end, n_columns)
    if table.schema.field(target_end).type == pa.uint8():
        inputs = _matrix(table, input_columns, np.uint8)
    else:
        inputs = _matrix(table, input_columns, np.float64)
        if _all_bytes(inputs):
            inputs = inputs.astype(np.uint8)
    inputs.flags.writeable = False
    targets.flags.writeable = False
    return Dataset(inputs=inputs, targets=targets, source=source)


def write_csv(dataset: Dataset, path: str | Path) -> None:
    """Write ``dataset`` as a data CSV (targets first, then inputs; integers printed as
    integers, other values in their shortest round-trip form), atomically: a crash
    leaves the old file or the complete new one.  Raises ``DataError`` when the file
    cannot be written."""
    columns = [*dataset.targets.T, *dataset.inputs.T]
    table = pa.Table.from_arrays(
        [pa.array(np.ascontiguousarray(c)) for c in columns],
        names=[f"c{i}" for i in range(len(columns))],
    )
    try:
        with atomic_open(path, "wb") as handle:
            pacsv.write_csv(table, handle, write_options=pacsv.WriteOptions(include_header=False))
    except OSError as error:
        raise DataError(f"cannot write: {error.strerror or error}", where=path) from None


def _records(data: bytes, end: int) -> pa.Buffer:
    """The text up to ``end`` with its final newline, which pyarrow needs on a lone line."""
    if data[end : end + 1] == b"\n":
        return pa.py_buffer(data).slice(0, end + 1)
    return pa.py_buffer(data[:end] + b"\n")


def _parse(buffer: pa.Buffer, n_columns: int, target_start: int, target_end: int) -> pa.Table | None:
    """Try whole-file uint8 inputs (MNIST: 8x less memory than float64) first, then float64."""
    for input_type in (pa.uint8(), pa.float64()):
        types = {
            f"f{i}": pa.float64() if target_start <= i < target_end else input_type
            for i in range(n_columns)
        }
        try:
            return pacsv.read_csv(
                pa.BufferReader(buffer),
                read_options=pacsv.ReadOptions(autogenerate_column_names=True),
                parse_options=pacsv.ParseOptions(quote_char=False, ignore_empty_lines=True),
                convert_options=pacsv.ConvertOptions(
                    column_types=types,
                    null_values=[],
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
        except pa.ArrowInvalid:
            continue
    return None


def _explain(data: bytes, source: str) -> DataError:
    return find_csv_error(data, source) or DataError(
        "the CSV parser rejected the file", where=source, allowed=ALLOWED_CELLS
    )


def _check_target_columns(source: str, n_columns: int, start: int, end: int) -> None:
    if not 0 <= start < end < n_columns:
        raise DataError(
            f"target columns [{start}, {end}) do not fit the {n_columns} columns of the file",
            where=source,
            allowed=f"0 <= TargetColumnStart < TargetColumnEnd <= {n_columns - 1}"
            " (at least one input column after the targets)",
        )


def _all_finite(table: pa.Table) -> bool:
    return all(
        pc.all(pc.is_finite(column)).as_py()
        for column in table.columns
        if pa.types.is_floating(column.type)
    )


def _matrix(table: pa.Table, columns: range, dtype: type[np.generic]) -> np.ndarray:
    """Columns side by side as a C-contiguous (rows, len(columns)) matrix."""
    by_column = np.empty((len(columns), table.num_rows), dtype)
    for row, column in enumerate(columns):
        by_column[row] = table.column(column).to_numpy()
    return np.ascontiguousarray(by_column.T)


def _all_bytes(values: np.ndarray) -> bool:
    return bool(((values >= 0) & (values <= 255) & (values == np.floor(values))).all())
