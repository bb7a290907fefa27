"""Fuzzed data CSVs: any file is read exactly as its text says, or is a ``DataError``.

A file the reader accepts is checked against a plain reading of its text (split on
newlines and commas, ``float`` each cell), so a silently misread value fails too.
Budget and the long campaign: see ``test_fuzz_support``.
"""

from __future__ import annotations

import codecs
import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_support import fuzz, junk_text, outcome

from brain.data import cache_path, load_dataset, read_csv
from brain.errors import DataError

numbers = st.one_of(
    st.integers(0, 255).map(str),
    st.integers(0, 255).map(str),
    st.integers(-(10**25), 10**25).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["-0", "+1", ".5", "5.", "1e5", "1E-3", " 1", "1 ", "9" * 300, "0." + "0" * 400 + "1"]),
)
not_numbers = st.one_of(
    st.sampled_from(
        ["", " ", "nan", "inf", "-inf", "1e309", "9" * 400, "0x1F", "1_0", "١", "\ufeff1", '"1"',
         "1\x00", "true", "NULL", "N/A", "1.0e+", "--1"]
    ),
    junk_text(6),
)  # fmt: skip
CELL, EXTRA_CELL, MISSING_CELL, SEPARATOR, NEWLINE, BLANK_LINE, BINARY = range(7)


@st.composite
def csv_bytes(draw) -> bytes:
    """A well-formed data CSV with none, one or two faults."""
    width, height = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    rows = [[draw(numbers) for _ in range(width)] for _ in range(height)]
    faults = draw(st.sets(st.integers(0, 6), max_size=2))
    row = rows[draw(st.integers(0, height - 1))]
    if CELL in faults:
        row[draw(st.integers(0, width - 1))] = draw(not_numbers)
    if EXTRA_CELL in faults:
        row.append(draw(numbers))
    if MISSING_CELL in faults:
        row.pop()
    separator = draw(st.sampled_from([";", "\t", ", ", ",,"])) if SEPARATOR in faults else ","
    newlines = ["\r", "\n\r"] if NEWLINE in faults else ["\n", "\r\n"]
    newline = draw(st.sampled_from(newlines))
    lines = [separator.join(r) for r in rows]
    if BLANK_LINE in faults:
        lines.insert(draw(st.integers(1, len(lines))), draw(st.sampled_from(["", " ", "\t"])))
    text = newline.join(lines) + draw(st.sampled_from(["", "\n", "\n\n", " \n", "\r\n"]))
    junk = draw(st.sampled_from([b"\x00", b"\xff\xfe", b"\n\x80"])) if BINARY in faults else b""
    return text.encode("utf-8", "surrogatepass") + junk


csv_files = st.one_of(csv_bytes(), csv_bytes(), st.binary(max_size=200))
target_columns = st.one_of(
    st.just((0, 1)),
    st.tuples(st.integers(0, 3), st.integers(-1, 3)).map(lambda se: (se[0], se[0] + se[1])),
)


def plain_reading(raw: bytes) -> np.ndarray:
    """The values of a well-formed file, read without the fast parser (which skips a BOM)."""
    lines = raw.removeprefix(codecs.BOM_UTF8).split(b"\n")
    while lines and not lines[-1].strip():
        lines.pop()
    return np.array([[float(cell) for cell in line.rstrip(b"\r").split(b",")] for line in lines])


def assert_read_as_written(dataset, raw: bytes, start: int, end: int) -> None:
    values = plain_reading(raw)
    assert np.array_equal(dataset.targets, values[:, start:end])
    assert np.array_equal(dataset.inputs, values[:, end:])
    assert np.isfinite(values).all()
    inputs = values[:, end:]
    all_bytes = ((inputs >= 0) & (inputs <= 255) & (inputs == np.floor(inputs))).all()
    assert dataset.inputs.dtype == (np.uint8 if all_bytes else np.float64)
    assert dataset.targets.dtype == np.float64


def read_or_locate(path, start: int, end: int):
    """``read_csv``, whose errors must say what is wrong, not only that the parser gave up."""
    try:
        return read_csv(path, start, end)
    except DataError as error:
        assert "parser rejected the file" not in error.message, "no line named for a file the parser refused"
        raise


@fuzz
@given(raw=csv_files, columns=target_columns)
def test_any_csv_is_read_as_written_or_is_a_data_error(tmp_path, raw, columns):
    path = tmp_path / "data.csv"
    path.write_bytes(raw)
    dataset = outcome(lambda: read_or_locate(path, *columns))
    if dataset is not None:
        assert_read_as_written(dataset, raw, *columns)


_names = itertools.count()


@fuzz
@given(raw=csv_files, cache=st.binary(max_size=300), columns=target_columns)
def test_a_corrupt_cache_never_changes_what_is_read(tmp_path, raw, cache, columns):
    # A new name per example: the cache trusts (size, mtime) and the clock may not tick between examples.
    path = tmp_path / f"data{next(_names)}.csv"
    path.write_bytes(raw)
    cache_path(path).write_bytes(cache)
    dataset = outcome(lambda: load_dataset(path, target_start=columns[0], target_end=columns[1]))
    if dataset is not None:
        assert_read_as_written(dataset, raw, *columns)


# --- what the fuzzer found: files the parser refused, but the check called valid -----


@pytest.mark.parametrize(
    ("raw", "where", "message"),
    [
        (b"1,2\n3,0\x00\n", 2, "column 2: '0\\x00' is not a number"),
        (b"1,2\n3,1_000\n", 2, "column 2: '1_000' is not a number"),
        (b"1,2\n3," + b"9" * 400 + b"\n", 2, "column 2: '99999"),
        (b"1,2\r3,4\r", 1, "a carriage return inside the line"),
        (b"\xef\xbb\xbf1,2\n3,x\n", 2, "column 2: 'x' is not a number"),
    ],
    ids=["NUL", "digit groups", "beyond float64", "old Mac line ends", "BOM"],
)
def test_a_refused_file_is_explained_at_its_line(tmp_path, raw, where, message):
    path = tmp_path / "data.csv"
    path.write_bytes(raw)
    with pytest.raises(DataError) as refused:
        read_csv(path)
    assert refused.value.line == where
    assert refused.value.message.startswith(message)


def test_a_bom_before_the_first_record_is_skipped(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"\xef\xbb\xbf1,2\n3,4\n")
    dataset = read_csv(path)
    assert dataset.targets.tolist() == [[1.0], [3.0]]
    assert dataset.inputs.tolist() == [[2], [4]]
