"""``logs`` on the JSON log of a small recorded run: summaries, filters, ``--json``, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_study_support import cli

from actors.study.logs import read_log, select
from brain.data import Dataset, load_idx, write_csv

NETWORK = "Identity, 784\nELU, 100\nSoftMax, 10\n"


@pytest.fixture(scope="module")
def log(mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of two workers over 400 training lines (2 rounds of 2 slices), then 200 test lines."""
    from actors.cli import main

    folder = tmp_path_factory.mktemp("logged-run")
    for name, source, lines in (
        ("train", "train-images-idx3-ubyte.gz", 400),
        ("test", "t10k-images-idx3-ubyte.gz", 200),
    ):
        data = load_idx(mnist_dir / source)
        write_csv(Dataset(data.inputs[:lines], data.targets[:lines], name), folder / f"{name}.csv")
    (folder / "network.txt").write_text(NETWORK)
    (folder / "batch.txt").write_text(
        "NetworkFile: network.txt\nTrainFile: train.csv\nTestFile: test.csv\nLearningRate: 0.8\n"
        "Lambda: 1e-7\nMinWeight: -0.1\nMaxWeight: 0.1\nParallel: 2\nExecutor: thread\nTrain: 1\nTest: 1\n"
    )
    assert main(["run", str(folder / "batch.txt"), "--log-dir", str(folder / "logs"), "--quiet"]) == 0
    (path,) = (folder / "logs").glob("*.jsonl")
    return path


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_summary_shows_passes_workers_and_channels(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "logs", log)
    assert code == 0
    for title in ("Passes", "Workers", "Channels"):
        assert title in out
    passes = [line for line in out.splitlines() if line.startswith(("│ 1 ", "│ 2 "))]
    assert any("train" in line for line in passes) and any("test" in line for line in passes)


def test_summary_shows_each_pass_context_switches_in_all_and_per_round(
    log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "logs", log)
    assert code == 0
    assert "Context switches" in out
    records = [record for _, record in read_log(log)]
    rounds = {r["index"]: r["rounds"] for r in records if r["event"] == "pass_end"}
    coordinators = [r for r in records if r["event"] == "context_switches" and r["process"] == "coordinator"]
    assert [r["index"] for r in coordinators] == [1, 2]  # the training pass and the test pass
    lines = [line for line in out.splitlines() if "coordinator" in line]
    for line, record in zip(lines, coordinators, strict=True):
        for key in ("voluntary", "task_resumptions", "blocked_operations"):
            value = record[key]
            assert f"{value} ({value / rounds[record['index']]:.1f})" in line, (key, line)


def test_newest_log_of_the_folder_is_the_default(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "logs", "--log-dir", log.parent)
    assert code == 0
    assert log.name in out.replace("\n", "")


def test_json_passes_worker_records_through_for_jq(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "logs", log, "--json", "--event", "worker_stats", "--worker", "1")
    assert code == 0
    records = json_lines(out)
    assert [(r["event"], r["worker"]) for r in records] == [("worker_stats", 1)] * 2  # train and test
    assert records[0]["slices"] == 2  # 4 slices of the training pass, shared by 2 workers


def test_rounds_of_one_pass_filtered_by_worker(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "logs", log, "--json", "--event", "round", "--worker", "0", "--pass", "1")
    assert code == 0
    rounds = json_lines(out)
    assert len(rounds) == 2  # 400 lines in rounds of 2 × 100
    assert all(any(piece["worker"] == 0 for piece in r["slices"]) for r in rounds)


def test_pass_filter_keeps_the_records_between_its_start_and_the_next(log: Path) -> None:
    records = select(read_log(log), [], None, 2)
    assert records[0][1]["event"] == "pass_start" and records[0][1]["mode"] == "test"
    assert all(number == 2 for number, _ in records)
    assert records[-1][1]["event"] == "pass_end"


def test_event_filter_without_json_prints_one_line_per_record(
    log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "logs", log, "--event", "pass_end")
    assert code == 0
    assert len([line for line in out.splitlines() if " pass_end: " in line]) == 2


def test_missing_file_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "logs", tmp_path / "nothing.jsonl")
    assert code == 2
    assert "log file not found" in err and len(err.strip().splitlines()) == 1


def test_a_file_that_is_not_json_names_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "notes.jsonl"
    path.write_text('{"event": "run_start"}\nthis is not json\n')
    code, _, err = cli(capsys, "logs", path)
    assert code == 2
    assert f"{path}:2: not a JSON log" in " ".join(err.split())


def test_a_log_cut_off_in_its_last_line_is_read_up_to_it(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = log.read_text().splitlines(keepends=True)
    cut = tmp_path / "killed.jsonl"
    cut.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # killed while writing the last
    code, out, err = cli(capsys, "logs", cut, "--json")
    assert code == 0
    assert json_lines(out) == [json.loads(line) for line in lines[:-1]]
    assert err.strip() == (
        f"note: {cut}: line {len(lines)} is cut off (was the run killed while writing it?): "
        f"read up to line {len(lines) - 1}"
    )
    code, out, _ = cli(capsys, "logs", cut)
    assert code == 0 and "Passes" in out


def test_a_damaged_record_between_others_is_skipped_with_a_note(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = log.read_text().splitlines(keepends=True)
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_text("".join(lines[:3]) + '{"event": "rou\n' + "".join(lines[3:]))
    code, out, err = cli(capsys, "logs", damaged, "--json")
    assert code == 0
    assert json_lines(out) == [json.loads(line) for line in lines]
    assert err.strip() == f"note: {damaged}: skipped line 4, a damaged record"


def test_a_record_cut_inside_a_character_is_skipped_and_the_rest_read(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A write cut short (a full disk) can end inside a UTF-8 character: only that record is lost.
    lines = log.read_bytes().splitlines(keepends=True)
    cut_char = b'{"event": "note", "text": "caf' + "é".encode()[:1] + b"\n"
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_bytes(b"".join(lines[:3]) + cut_char + b"".join(lines[3:]))
    code, out, err = cli(capsys, "logs", damaged, "--json")
    assert code == 0
    assert json_lines(out) == [json.loads(line) for line in lines]
    assert err.strip() == f"note: {damaged}: skipped line 4, a damaged record"
    killed = tmp_path / "killed.jsonl"
    killed.write_bytes(b"".join(lines) + cut_char[:-1])  # the last line, cut inside its last character
    code, out, err = cli(capsys, "logs", killed, "--json")
    assert code == 0
    assert json_lines(out) == [json.loads(line) for line in lines]
    assert f"line {len(lines) + 1} is cut off" in err


def test_a_line_that_is_not_utf8_and_no_record_names_its_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "binary.jsonl"
    path.write_bytes(b'{"event": "run_start"}\n\xff\xfe binary\n')
    code, _, err = cli(capsys, "logs", path)
    assert code == 2
    assert f"{path}:2: not a JSON log" in " ".join(err.split())


def test_a_log_without_a_complete_record_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "killed.jsonl"
    path.write_text('{"event": "run_st')
    code, _, err = cli(capsys, "logs", path)
    assert code == 2
    assert err.strip() == f"error: {path}:1: the log holds no complete record"
