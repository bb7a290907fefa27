"""What commands print: user text as given, whole lines on a pipe, values cut; a closed pipe ends quietly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from actor_helpers import REPO
from test_study_support import cli

NETWORK = "Identity, 784\nELU, 10\nSoftMax, 10\n"
MARKUP = "[red]x[/]:smile:"  # rich would colour the x and draw a smiling face


def actors(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    """``python -m actors ARGV`` in a fresh interpreter, stdout and stderr pipes."""
    command = [sys.executable, "-m", "actors", *map(str, argv)]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)


def write_log(path: Path, records: int) -> Path:
    """A log of a run_start and ``records - 1`` rounds."""
    lines = [{"event": "run_start", "run": "r1"}]
    lines += [{"event": "round", "round": i} for i in range(records - 1)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_an_error_at_line_100_prints_the_line_number(tmp_path: Path) -> None:
    rows = ["5," + ",".join(["0"] * 784)] * 150
    rows[99] = rows[99][:-1] + "x"  # the last pixel of line 100
    (tmp_path / "label12.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "net.txt").write_text(NETWORK)
    batch = tmp_path / "batch.txt"
    batch.write_text("NetworkFile: net.txt\nTrainFile: label12.csv\nTrain: 1\n")
    done = actors("run", batch, "--no-log", "--quiet")
    assert done.returncode == 2, done.stderr
    assert f"{tmp_path / 'label12.csv'}:100: column 785: 'x' is not a number" in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_markup_in_a_value_is_printed_as_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "net.txt").write_text(NETWORK)
    batch = tmp_path / "batch.txt"
    batch.write_text(f"NetworkFile: net.txt\nTrainFile: train.csv\nExecutor: {MARKUP}\nTrain: 1\n")
    code, _, err = cli(capsys, "run", batch, "--no-log", "--quiet")
    assert code == 2
    assert f"{batch}:3: Executor: unknown executor '{MARKUP}'" in err


def test_markup_in_a_path_is_printed_as_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = write_log(tmp_path / MARKUP / "run.jsonl", 3)
    code, out, _ = cli(capsys, "logs", log)
    assert code == 0
    assert out.splitlines()[0] == f"{log}: 3 records"


@pytest.mark.parametrize(
    ("size", "message"),
    [
        (100_000, "Executor: unknown executor '" + "x" * 79 + "…'"),
        (10_000_000, "batch file is too large: 10,000,020 bytes"),  # refused before it is read
    ],
)
def test_a_long_bad_value_is_cut_in_the_message(tmp_path: Path, size: int, message: str) -> None:
    batch = tmp_path / "batch.txt"
    batch.write_text("Executor: " + "x" * size + "\nTrain: 1\n")
    done = actors("check", batch)
    assert done.returncode == 2
    # Each line names the batch file; without its path (as long as the temp folder makes it) the
    # three lines are ~370 bytes, the uncut value alone 100,000.
    said = done.stderr.replace(str(batch), "batch.txt")
    assert len(said.encode()) < 450, said[:600]
    assert message in done.stderr


def test_output_to_a_pipe_is_not_wrapped(tmp_path: Path) -> None:
    log = write_log(tmp_path / ("a-folder-with-a-long-name-" * 4) / "run.jsonl", 2)
    done = actors("logs", log, "--event", "run_start")
    assert done.returncode == 0, done.stderr
    assert len(str(log)) > 100
    assert done.stdout.splitlines() == [f"{log}: 1 records", " run_start: "]


@pytest.mark.parametrize("options", [["--json"], ["--event", "round"]])
def test_a_reader_that_closes_the_pipe_ends_the_command_quietly(tmp_path: Path, options: list[str]) -> None:
    log = write_log(tmp_path / "run.jsonl", 50_000)  # far more than a pipe holds
    errors = tmp_path / "stderr.txt"
    pipeline = 'set -o pipefail; "$0" -m actors logs "$@" 2>"$ERRORS" | head -1'
    done = subprocess.run(
        ["bash", "-c", pipeline, sys.executable, str(log), *options],
        cwd=REPO, capture_output=True, text=True, timeout=120, env={**os.environ, "ERRORS": str(errors)},
    )  # fmt: skip
    assert done.returncode == 0, errors.read_text()[-2000:]
    assert errors.read_text() == ""
    assert len(done.stdout.splitlines()) == 1


def test_a_broken_pipe_that_is_not_stdout_is_a_bug(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from actors.study import cli as study_cli

    def broken(args, screen) -> int:
        raise BrokenPipeError(32, "a pipe to a worker")

    monkeypatch.setattr(study_cli, "_run_logs", broken)
    with pytest.raises(BrokenPipeError):
        cli(capsys, "logs", write_log(tmp_path / "run.jsonl", 2))
