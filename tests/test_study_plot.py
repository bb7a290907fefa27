"""``plot RESULTFILE``: a result table as a PNG of accuracy and time per pass."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_study_support import cli, png_size

from actors.records.results import ResultRow, append_result


def row(mode: str, epoch: int, seconds: float, correct: int | None = None) -> ResultRow:
    testing = mode == "test"
    return ResultRow(
        mode=mode, cpus=2, parallel=2, worker_batch=100, learning_rate=0.8, worker_setup_time=0.5,
        epoch_elapsed_time=seconds, epoch_lines=1000, total_elapsed_time=seconds, total_lines=1000,
        correct=correct, incorrect=1000 - correct if testing else None,
        correct_percent=correct / 10 if testing else None,
        incorrect_percent=100 - correct / 10 if testing else None, error_rate=1.0 if testing else None,
        semantics="thesis", executor="thread", data_capacity=2, output_capacity=2, epoch=epoch, seed=42,
    )  # fmt: skip


def test_result_file_becomes_a_png_of_1000_by_700(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = tmp_path / "results.csv"
    for epoch in (1, 2):
        append_result(table, row("train", epoch, 1.5))
        append_result(table, row("test", epoch, 0.2, correct=900 + epoch))
    code, out, _ = cli(capsys, "plot", table)
    assert code == 0
    assert png_size(tmp_path / "results.png") == (1000, 700)
    assert "results.png" in out


def test_out_names_the_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = tmp_path / "results.csv"
    append_result(table, row("train", 1, 1.0))
    code, _, _ = cli(capsys, "plot", table, "--out", tmp_path / "elsewhere.png")
    assert code == 0
    assert png_size(tmp_path / "elsewhere.png") == (1000, 700)


def test_empty_or_missing_result_file_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    for path, message in ((empty, "has no rows"), (tmp_path / "missing.csv", "result file not found")):
        code, _, err = cli(capsys, "plot", path)
        assert code == 2
        assert message in err
    assert not (tmp_path / "empty.png").exists()
