"""``python -m actors run`` end to end, in a subprocess: files written, the JSON log, error paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from actor_helpers import LAYOUT, REPO, carrying, mnist_csv, wait_until

from actors.records.results import HEADER, read_results
from brain.connectome import Connectome
from brain.data import write_csv
from brain.persistence import Persisted, load_persistence, save_persistence

TRAIN_LINES = 2000
TEST_LINES = 500
WORKER_BATCH = 100
MARKER = "GOCONCURRENT_TEST_RUN"
NETWORK = "Identity, 784\nELU, 100\nSoftMax, 10\n"
# The thesis' initial weights (batch/default.txt), two workers in processes.
WORKERS = "MinWeight: -0.1\nMaxWeight: 0.1\nParallel: 2\nExecutor: process\n"
THESIS = "LearningRate: 0.8\nLambda: 1e-7\n" + WORKERS
# The program's default Lambda of 1 grows every weight by a factor 1 + 2·lr·λ a step:
# with LearningRate 1e6 the outputs overflow within the first slice.
DIVERGING = "LearningRate: 1e6\nLambda: 1\n" + WORKERS


@pytest.fixture(scope="module")
def csv_files(mnist_dir, tmp_path_factory) -> tuple[Path, Path]:
    """The first 2,000 training and 500 test images as the thesis' CSV files."""
    folder = tmp_path_factory.mktemp("mnist-csv")
    return mnist_csv(mnist_dir, folder, TRAIN_LINES, TEST_LINES, ("train.csv", "test.csv"))


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str
    marker: str
    log: list[dict]

    def events(self, name: str) -> list[dict]:
        return [record for record in self.log if record["event"] == name]


def run_cli(batch: Path, *options: str, log_dir: Path | None = None) -> Run:
    """Run the batch in a fresh interpreter from the repo root; its processes carry a marker."""
    marker = uuid.uuid4().hex
    logging = ["--log-dir", str(log_dir)] if log_dir else ["--no-log"]
    done = subprocess.run(
        [sys.executable, "-m", "actors", "run", str(batch), "--quiet", *logging, *options],
        cwd=REPO, capture_output=True, text=True, timeout=120, env={**os.environ, MARKER: marker},
    )  # fmt: skip
    log = []
    if log_dir is not None:
        for path in sorted(log_dir.glob("*.jsonl")):
            log += [json.loads(line) for line in path.read_text().splitlines()]
    return Run(done.returncode, done.stdout, done.stderr, marker, log)


def write_batch(folder: Path, csv_files: tuple[Path, Path], body: str) -> Path:
    """A batch in ``folder`` with the network file, the data, and ``body`` after them."""
    (folder / "net.txt").write_text(NETWORK)
    train, test = csv_files
    batch = folder / "batch.txt"
    batch.write_text(f"NetworkFile: net.txt\nTrainFile: {train}\nTestFile: {test}\n{body}")
    return batch


def assert_one_line_error(run: Run, *fragments: str) -> None:
    assert run.returncode == 2, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    assert "Traceback" not in run.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def assert_nothing_left_behind(run: Run) -> None:
    """No process of the run is alive and its shared-memory arena is gone."""
    assert wait_until(lambda: not carrying(MARKER, run.marker)), "processes of the run outlived it"
    pid = run.events("run_start")[0]["pid"]
    assert not list(Path("/dev/shm").glob(f"goconcurrent-{pid}-*"))


def test_train_twice_then_test_writes_results_persistence_and_a_json_log(csv_files, tmp_path) -> None:
    batch = write_batch(
        tmp_path,
        csv_files,
        f"PersistenceFile: weights.npz\nResultFile: results.csv\n{THESIS}Train: 2\nTest: 1\n",
    )
    run = run_cli(batch, log_dir=tmp_path / "logs")
    assert run.returncode == 0, run.stderr

    table = (tmp_path / "results.csv").read_text().splitlines()
    assert table[0] == HEADER
    rows = read_results(tmp_path / "results.csv")
    assert [row["Mode"] for row in rows] == ["train", "train", "test"]
    assert [row["EpochLines"] for row in rows] == [TRAIN_LINES, TRAIN_LINES, TEST_LINES]
    assert [row["TotalLines"] for row in rows] == [TRAIN_LINES, 2 * TRAIN_LINES, 2 * TRAIN_LINES]
    assert [row["Parallel"] for row in rows] == [2, 2, 2]
    test_row = rows[2]
    assert test_row["Correct"] + test_row["Incorrect"] == TEST_LINES
    assert rows[0]["Correct"] is None and rows[1]["Correct"] is None

    stored = load_persistence(tmp_path / "weights.npz", expected_layout=LAYOUT)
    assert (stored.epoch, stored.total_lines) == (2, 2 * TRAIN_LINES)

    names = {record["event"] for record in run.log}
    expected = {"run_start", "pass_start", "round", "channel_stats", "worker_stats", "pass_end", "run_end"}
    assert expected <= names
    assert run.log[0]["event"] == "run_start" and run.log[-1]["event"] == "run_end"
    assert len(run.events("pass_start")) == len(run.events("pass_end")) == 3
    assert [r["channel"] for r in run.events("channel_stats")] == ["data", "output"] * 3
    assert_rounds_cover_every_line(run.log)
    assert_nothing_left_behind(run)


def assert_rounds_cover_every_line(log: list[dict]) -> None:
    """Between a pass_start and its pass_end, the rounds' slices tile the pass' lines."""
    passes: list[tuple[int, list[tuple[int, int]]]] = []
    for record in log:
        if record["event"] == "pass_start":
            passes.append((record["lines"], []))
        elif record["event"] == "round":
            slices = record["slices"]
            assert 1 <= len(slices) <= 2  # Parallel 2
            passes[-1][1].extend((piece["start"], piece["stop"]) for piece in slices)
    assert [lines for lines, _ in passes] == [TRAIN_LINES, TRAIN_LINES, TEST_LINES]
    for lines, pieces in passes:
        expected = [(start, min(start + WORKER_BATCH, lines)) for start in range(0, lines, WORKER_BATCH)]
        assert sorted(pieces) == expected


def test_an_unknown_key_is_one_line_with_file_line_and_the_known_keys(csv_files, tmp_path) -> None:
    batch = write_batch(tmp_path, csv_files, "LearnRate: 0.5\nTrain: 1\n")
    run = run_cli(batch)
    assert_one_line_error(run, f"{batch}:4:", "LearnRate", "allowed:", "LearningRate", "NetworkFile", "Train")


def test_a_missing_network_file_is_a_user_error(csv_files, tmp_path) -> None:
    batch = tmp_path / "batch.txt"
    train, _ = csv_files
    batch.write_text(f"NetworkFile: missing.txt\nTrainFile: {train}\nTrain: 1\n")
    run = run_cli(batch)
    assert_one_line_error(run, "missing.txt")


def test_a_test_pass_with_nothing_trained_is_refused(csv_files, tmp_path) -> None:
    batch = write_batch(tmp_path, csv_files, "Test: 1\n")
    run = run_cli(batch)
    assert_one_line_error(run, f"{batch}:4:", "test pass needs a trained network")


@pytest.mark.parametrize("stored_before", [False, True], ids=["no-store", "existing-store"])
def test_divergence_fails_the_run_and_writes_no_weights(csv_files, tmp_path, stored_before) -> None:
    store = tmp_path / "weights.npz"
    if stored_before:
        weights = Connectome.uniform(LAYOUT, -0.1, 0.1, seed=3).weights
        save_persistence(store, Persisted(LAYOUT, weights, total_lines=123, epoch=4))
        before = store.read_bytes()
    body = f"PersistenceFile: weights.npz\nResultFile: results.csv\n{DIVERGING}Train: 2\n"
    run = run_cli(write_batch(tmp_path, csv_files, body), log_dir=tmp_path / "logs")
    epoch = 5 if stored_before else 1
    assert_one_line_error(run, f"diverged in epoch {epoch}, round 1")
    if stored_before:
        assert store.read_bytes() == before
    else:
        assert not store.exists()
    assert not (tmp_path / "results.csv").exists()
    assert run.events("pass_failed")
    assert_nothing_left_behind(run)


def test_a_modern_run_persists_each_replicas_optimizer_state_and_continues_from_it(tmp_path, mnist_dir):
    import numpy as np

    from brain.data import Dataset, load_dataset

    train = load_dataset(mnist_dir / "train-images-idx3-ubyte.gz")
    write_csv(Dataset(train.inputs[:1000], train.targets[:1000], "t"), tmp_path / "train.csv")
    (tmp_path / "net.txt").write_text("Identity, 784\nReLU, 32\nSoftMax, 10\n")
    (tmp_path / "batch.txt").write_text(
        "NetworkFile: net.txt\nTrainFile: train.csv\nTestFile: train.csv\nPersistenceFile: w.npz\n"
        "Semantics: Modern\nLoss: CrossEntropy\nOptimizer: Adam\nLearningRate: 0.001\nLambda: 0\n"
        "Update: MiniBatch\nMiniBatch: 50\nInit: He\nParallel: 2\nWorkerBatch: 100\nMerge: Mean\n"
        "Executor: process\nTrain: 1\nTest: 1\n"
    )
    command = [sys.executable, "-m", "actors", "run", str(tmp_path / "batch.txt"), "--quiet", "--no-log"]
    first = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    stored = load_persistence(tmp_path / "w.npz")
    assert stored.semantics == "modern"
    assert stored.extra["m"].shape == stored.extra["v"].shape == (2, stored.layout.n_weights)
    assert np.any(stored.extra["m"] != 0) and list(stored.extra["step"]) == [10.0, 10.0]
    second = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    again = load_persistence(tmp_path / "w.npz")
    assert again.epoch == 2 and list(again.extra["step"]) == [20.0, 20.0]  # Adam's steps went on
