"""The result table: the thesis' columns first, one row per pass, never half a row."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from actors.records.results import COLUMNS, HEADER, ResultRow, append_result, read_results
from brain.errors import UserError

THESIS_HEADER = (
    "Mode;CPUs;Parallel;WorkerBatch;LearningRate;WorkerSetupTime;EpochElapsedTime;EpochLines;"
    "TotalElapsedTime;TotalLines;Correct;Incorrect;CorrectPercent;IncorrectPercent;ErrorRate"
)
PROJECT_COLUMNS = "Semantics;Executor;DataChannelCapacity;OutputChannelCapacity;Epoch;Seed;Timestamp"


def train_row(**changes) -> ResultRow:
    fields = dict(
        mode="train", cpus=2, parallel=4, worker_batch=100, learning_rate=0.8,
        worker_setup_time=0.25, epoch_elapsed_time=32.5, epoch_lines=60000,
        total_elapsed_time=65.0, total_lines=120000, semantics="thesis", executor="process",
        data_capacity=4, output_capacity=math.inf, epoch=2, seed=42,
        timestamp="2024-01-02T03:04:05+00:00",
    )  # fmt: skip
    fields.update(changes)
    return ResultRow(**fields)


def test_header_is_the_thesis_columns_then_the_projects():
    assert HEADER == THESIS_HEADER + ";" + PROJECT_COLUMNS


def test_first_append_writes_header_and_row(tmp_path):
    path = tmp_path / "r.csv"
    append_result(path, train_row())
    assert path.read_text() == (
        HEADER + "\n"
        "train;2;4;100;0.8;0.25;32.5;60000;65.0;120000;;;;;;"
        "thesis;process;4;unbounded;2;42;2024-01-02T03:04:05+00:00\n"
    )


def test_rows_append_under_one_header_and_read_back_typed(tmp_path):
    path = tmp_path / "sub" / "r.csv"
    append_result(path, train_row())
    test = train_row(
        mode="test", epoch_lines=10000, correct=9123, incorrect=877, correct_percent=91.23,
        incorrect_percent=8.77, error_rate=6.5, data_capacity=0, output_capacity=1,
    )  # fmt: skip
    append_result(path, test)
    lines = path.read_text().splitlines()
    assert lines[0] == HEADER and len(lines) == 3
    assert all(line.count(";") == len(COLUMNS) - 1 for line in lines)
    first, second = read_results(path)
    assert first["Mode"] == "train" and first["Correct"] is None and first["ErrorRate"] is None
    assert first["OutputChannelCapacity"] == math.inf and first["TotalLines"] == 120000
    assert second["Correct"] == 9123 and second["CorrectPercent"] == 91.23
    assert (second["DataChannelCapacity"], second["OutputChannelCapacity"]) == (0, 1)
    assert list(second) == list(COLUMNS)


def test_numpy_scalars_are_written_as_plain_numbers(tmp_path):
    path = tmp_path / "r.csv"
    append_result(path, train_row(learning_rate=np.float64(0.8), total_lines=np.int64(7)))
    row = path.read_text().splitlines()[1].split(";")
    assert row[COLUMNS.index("LearningRate")] == "0.8"
    assert row[COLUMNS.index("TotalLines")] == "7"


def test_empty_existing_file_gets_the_header(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("")
    append_result(path, train_row())
    assert path.read_text().splitlines()[0] == HEADER


def test_row_goes_on_a_new_line_when_the_file_lacks_a_final_newline(tmp_path):
    path = tmp_path / "r.csv"
    append_result(path, train_row())
    path.write_text(path.read_text().rstrip("\n"))
    append_result(path, train_row(epoch=3))
    assert [row["Epoch"] for row in read_results(path)] == [2, 3]


@pytest.mark.parametrize(
    ("header", "difference"),
    [
        (THESIS_HEADER, "missing Semantics, Executor, DataChannelCapacity"),
        (HEADER + ";Extra", "unexpected Extra"),
        (HEADER.replace("Mode;CPUs", "CPUs;Mode"), "column 1 is CPUs where Mode belongs"),
    ],
)
def test_a_file_with_another_header_is_refused_and_left_alone(tmp_path, header, difference):
    path = tmp_path / "old.csv"
    before = header + "\nTrain;1;1\n"
    path.write_text(before)
    with pytest.raises(UserError) as caught:
        append_result(path, train_row())
    message = str(caught.value)
    assert message.startswith(f"{path}:1: result file has other columns than this program writes")
    assert difference in message
    assert f"(allowed: a new ResultFile, or one whose header is {HEADER})" in message
    assert path.read_text() == before


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_crash_during_the_append_leaves_the_old_table(tmp_path, monkeypatch, failing):
    path = tmp_path / "r.csv"
    append_result(path, train_row())
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr(os, failing, crash)
    with pytest.raises(UserError, match=r"r\.csv: cannot write: disk gone"):
        append_result(path, train_row(epoch=3))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv"]  # no temp file left


def test_mode_must_be_train_or_test_in_the_go_programs_spelling():
    for wrong in ("Train", "TEST", "validate"):
        with pytest.raises(ValueError, match="mode must be"):
            train_row(mode=wrong)


def test_a_cell_holding_the_separator_is_refused():
    with pytest.raises(ValueError, match="would break the table"):
        train_row(semantics="a;b")


def test_reading_a_row_of_the_wrong_width_names_the_line(tmp_path):
    path = tmp_path / "r.csv"
    append_result(path, train_row())
    with path.open("a") as handle:
        handle.write("Train;1\n")
    with pytest.raises(UserError, match=r"r\.csv:3: row has 2 cells, the header 22"):
        read_results(path)
