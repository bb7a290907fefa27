"""Fuzzed result tables: any file reads as rows or is a ``UserError``, and appending to it
either adds exactly one row or changes nothing.

Budget and the long campaign: see ``test_fuzz_support``.
"""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_support import fuzz, junk_text, outcome

from actors.records.results import COLUMNS, HEADER, SEPARATOR, ResultRow, append_result, read_results

ROW = ResultRow(
    mode="test", cpus=2, parallel=2, worker_batch=100, learning_rate=0.5, worker_setup_time=0.25,
    epoch_elapsed_time=1.5, epoch_lines=10000, total_elapsed_time=3.0, total_lines=60000,
    correct=9000, incorrect=1000, correct_percent=90.0, incorrect_percent=10.0, error_rate=1.25,
    semantics="thesis", executor="process", data_capacity=math.inf, output_capacity=2.0, epoch=1,
    seed=42, timestamp="2024-01-01T00:00:00+00:00",
)  # fmt: skip

good_cells = st.sampled_from([*ROW.cells(), "", "unbounded", "nan", "-inf", "1e999", "9" * 5_000])
cells = st.one_of(good_cells, good_cells, junk_text(8))


@st.composite
def result_texts(draw) -> str:
    """A table like the program writes, with its header, cells and separators tampered with."""
    header = draw(
        st.one_of(st.just(HEADER), st.just(HEADER), st.lists(st.sampled_from(COLUMNS)).map(";".join))
    )
    width = len(header.split(SEPARATOR))
    rows = draw(
        st.lists(
            st.one_of(
                st.just(SEPARATOR.join(ROW.cells())),
                st.lists(cells, min_size=width, max_size=width).map(SEPARATOR.join),
                st.lists(cells, max_size=width + 2).map(SEPARATOR.join),
                junk_text(),
            ),
            max_size=5,
        )
    )
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    return newline.join([header, *rows]) + draw(st.sampled_from(["", "\n", "\n\n"]))


result_files = st.one_of(
    result_texts().map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.binary(max_size=200),
    st.just(b""),
)


@fuzz
@given(raw=result_files)
def test_any_result_file_reads_as_rows_or_is_a_user_error(tmp_path, raw):
    path = tmp_path / "results.csv"
    path.write_bytes(raw)
    rows = outcome(lambda: read_results(path))
    if rows is not None:
        header = raw.decode().splitlines()[0].split(SEPARATOR) if raw.strip() else []
        assert all(list(row) == list(dict.fromkeys(header)) for row in rows)


@fuzz
@given(raw=result_files)
def test_appending_to_any_result_file_adds_one_row_or_changes_nothing(tmp_path, raw):
    path = tmp_path / "results.csv"
    path.write_bytes(raw)
    if outcome(lambda: append_result(path, ROW)) is None and path.read_bytes() == raw:
        return  # refused, and the table is as it was
    text = path.read_bytes().decode("utf-8")
    lines = text.splitlines()
    assert lines[0] == HEADER
    assert lines[-1] == SEPARATOR.join(ROW.cells())
    old = raw.decode("utf-8")
    # Line ends may change to '\n', and a blank line appear before the new row.
    assert nonblank(lines[:-1]) == (nonblank(old.splitlines()) if old.strip() else [HEADER])


def nonblank(lines: list[str]) -> list[str]:
    return [line for line in lines if line.strip()]
