"""An unfinished epoch goes on only with the settings it began with (``actors.records.checkpoints``).

Half an epoch trained with WorkerBatch 5 and half with 10 is neither, and its result
row would name only the second: a resume (``--resume``) or a plain rerun that would
continue an unfinished epoch with other settings is refused, before any training, with
one line naming the pass and what changed.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from actor_helpers import run_until_rounds, thesis_folder

from actors.batchfile.parse import load_batch
from actors.records.checkpoints import save_checkpoint, unfinished_epoch_problem
from brain.connectome import Connectome
from brain.layout import Layout
from brain.persistence import Persisted, load_persistence

REPO = Path(__file__).resolve().parent.parent
LAYOUT = Layout.of(("Identity", 784), ("ELU", 100), ("SoftMax", 10))
TRAIN_LINE = 12  # the batch's Train line


def _batch(folder: Path, *, persistence: bool = True, worker_batch: int = 5, rate: float = 0.8) -> Path:
    store = "PersistenceFile: weights.npz\n" if persistence else ""
    text = (
        f"NetworkFile: net.txt\nTrainFile: train.csv\nTestFile: test.csv\n{store}ResultFile: results.csv\n"
        f"LearningRate: {rate}\nLambda: 1e-7\nMinWeight: -0.1\nMaxWeight: 0.1\n"
        f"Parallel: 1\nWorkerBatch: {worker_batch}\nTrain: 1\nTest: 1\n"
    )
    if not persistence:  # the same line numbers either way
        text = "# no PersistenceFile: a checkpoint goes beside the batch file\n" + text
    batch = folder / "batch.txt"
    batch.write_text(text)
    assert text.splitlines()[TRAIN_LINE - 1] == "Train: 1"
    return batch


def _actors(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "actors", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )


def _refused(done: subprocess.CompletedProcess, batch: Path, *changes: str) -> None:
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"{batch}:{TRAIN_LINE}: " in done.stderr
    assert "with other settings: " + "; ".join(changes) in done.stderr
    assert "allowed: the settings the interrupted pass ran with" in done.stderr


@pytest.fixture(scope="module")
def interrupted(mnist_dir, tmp_path_factory) -> Path:
    """A folder whose run was stopped by SIGINT in its first epoch (WorkerBatch 5, a PersistenceFile)."""
    folder = thesis_folder(mnist_dir, tmp_path_factory.mktemp("interrupted"), 3000, 100)
    batch = _batch(folder)
    process = run_until_rounds(batch, folder / "logs", 30)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    return folder


def test_a_resume_with_another_worker_batch_is_refused_and_the_checkpoint_stays(interrupted) -> None:
    store = interrupted / "weights.npz"
    before = store.read_bytes()
    checkpoint = load_persistence(store)
    assert 0 < checkpoint.epoch_lines_done < 3000
    assert json.loads(checkpoint.pass_settings)["WorkerBatch"] == "5"
    batch = _batch(interrupted, worker_batch=10)
    _refused(_actors("run", batch, "--resume", "--quiet", "--no-log"), batch, "WorkerBatch was 5, is 10 now")
    # A plain run would go on with the unfinished epoch in the PersistenceFile too, and check says so.
    _refused(_actors("run", batch, "--quiet", "--no-log"), batch, "WorkerBatch was 5, is 10 now")
    _refused(_actors("check", batch), batch, "WorkerBatch was 5, is 10 now")
    _refused(_actors("check", batch, "--resume"), batch, "WorkerBatch was 5, is 10 now")
    cleared = _actors("check", batch, "--resume", "--set", "WorkerBatch=5")
    assert cleared.returncode == 0, cleared.stderr
    assert (
        f"resumes pass 1, repetition 1, from {store} ({checkpoint.epoch_lines_done:,} lines" in cleared.stdout
    )
    assert store.read_bytes() == before
    assert not (interrupted / "results.csv").exists()


def test_a_setting_put_back_on_the_command_line_resumes_the_epoch(interrupted) -> None:
    batch = _batch(interrupted, worker_batch=10)
    done = _actors("run", batch, "--resume", "--set", "WorkerBatch=5", "--quiet", "--no-log")
    assert done.returncode == 0, done.stderr
    finished = load_persistence(interrupted / "weights.npz")
    assert (finished.epoch, finished.epoch_lines_done, finished.pass_settings) == (1, 0, "")
    assert finished.total_lines == 3000


def _checkpoint_beside(folder: Path, lines_done: int, **recorded) -> Path:
    """A checkpoint of pass 1 beside the batch file (no PersistenceFile), as a run writes it."""
    batch = _batch(folder, persistence=False, **recorded)
    train = load_batch(batch).passes[0]
    weights = Connectome.uniform(LAYOUT, -0.1, 0.1, 42).weights
    path = folder / "batch.txt.checkpoint.npz"
    save_checkpoint(path, Persisted(LAYOUT, weights, epoch_lines_done=lines_done), train, 1, 1)
    return path


def test_a_checkpoint_beside_the_batch_file_refuses_another_learning_rate(mnist_dir, tmp_path) -> None:
    folder = thesis_folder(mnist_dir, tmp_path, 200, 50)
    checkpoint = _checkpoint_beside(folder, 100, rate=0.8)
    before = checkpoint.read_bytes()
    batch = _batch(folder, persistence=False, rate=0.5, worker_batch=10)
    done = _actors("run", batch, "--resume", "--quiet", "--no-log")
    _refused(done, batch, "WorkerBatch was 5, is 10 now; LearningRate was 0.8, is 0.5 now")
    assert f"the checkpoint {checkpoint} holds an epoch interrupted after 100 lines" in done.stderr
    assert checkpoint.read_bytes() == before


def test_a_checkpoint_of_a_pass_the_batch_no_longer_has_is_refused(mnist_dir, tmp_path) -> None:
    folder = thesis_folder(mnist_dir, tmp_path, 200, 50)
    checkpoint = _checkpoint_beside(folder, 100)
    stored = load_persistence(checkpoint)
    np.savez(checkpoint, **{**dict(np.load(checkpoint)), "batch_pass": np.int64(3)})
    assert load_persistence(checkpoint).batch_pass == 3 and stored.batch_pass == 1
    batch = folder / "batch.txt"
    done = _actors("run", batch, "--resume", "--quiet", "--no-log")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1
    assert f"the checkpoint {checkpoint} was saved in pass 3, but the batch has 2 passes now" in done.stderr


def test_only_a_training_pass_with_recorded_settings_is_compared(mnist_dir, tmp_path) -> None:
    folder = thesis_folder(mnist_dir, tmp_path, 200, 50)
    checkpoint = load_persistence(_checkpoint_beside(folder, 100))
    train, test = load_batch(_batch(folder, persistence=False, worker_batch=10)).passes
    assert "WorkerBatch was 5, is 10 now" in unfinished_epoch_problem(checkpoint, train)
    assert unfinished_epoch_problem(checkpoint, test) is None  # a test pass starts over
    older = replace(checkpoint, pass_settings="")  # written before checkpoints recorded their settings
    assert unfinished_epoch_problem(older, train) is None
    unknown = replace(checkpoint, pass_settings=json.dumps({"WorkerBatch": "5", "Futuristic": "on"}))
    assert "WorkerBatch was 5, is 10 now" in unfinished_epoch_problem(unknown, train)
    broken = replace(checkpoint, pass_settings="[1, 2]")
    assert "pass_settings: not a JSON object" in unfinished_epoch_problem(broken, train)
    same = load_batch(_batch(folder, persistence=False)).passes[0]
    assert unfinished_epoch_problem(checkpoint, same) is None


def test_a_plain_run_would_continue_a_later_pass_epoch_in_its_first_pass_and_is_told_to_resume(
    mnist_dir, tmp_path
) -> None:
    """Two training passes on one PersistenceFile, the second interrupted: a run without --resume
    would go on with that epoch in the first pass, with the first pass' LearningRate."""
    folder = thesis_folder(mnist_dir, tmp_path, 200, 50)
    batch = folder / "batch.txt"
    batch.write_text(
        "NetworkFile: net.txt\nTrainFile: train.csv\nPersistenceFile: weights.npz\n"
        "LearningRate: 0.8\nLambda: 1e-7\nMinWeight: -0.1\nMaxWeight: 0.1\nWorkerBatch: 5\nTrain: 1\n"
        "LearningRate: 0.4\nTrain: 1\n"
    )
    first, second = load_batch(batch).passes
    weights = Connectome.uniform(LAYOUT, -0.1, 0.1, 42).weights
    save_checkpoint(
        folder / "weights.npz", Persisted(LAYOUT, weights, epoch=1, epoch_lines_done=100), second, 2, 1
    )
    for command in (("check", batch), ("run", batch, "--quiet", "--no-log")):
        done = _actors(*command)
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1, done.stderr
        assert f"{batch}:{first.line}: PersistenceFile {folder / 'weights.npz'} holds an epoch" in done.stderr
        assert (
            "LearningRate was 0.4, is 0.8 now (saved in pass 2: run --resume goes on with it there)"
            in done.stderr
        )
    resumed = _actors("run", batch, "--resume", "--quiet", "--no-log")
    assert resumed.returncode == 0, resumed.stderr
    assert load_persistence(folder / "weights.npz").epoch == 2  # pass 2 finished the epoch it had begun


def test_a_folder_moved_whole_still_resumes_but_a_data_file_from_elsewhere_does_not(
    mnist_dir, tmp_path
) -> None:
    """The paths a checkpoint records are relative to the batch file's folder."""
    folder = thesis_folder(mnist_dir, tmp_path / "before", 200, 50)
    checkpoint = _checkpoint_beside(folder, 100)
    moved = folder.rename(tmp_path / "after")
    batch = moved / "batch.txt"
    text = batch.read_text()
    elsewhere = tmp_path / "data" / "train.csv"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes((moved / "train.csv").read_bytes())  # the same lines, another file
    batch.write_text(text.replace("TrainFile: train.csv", f"TrainFile: {elsewhere}"))
    refused = _actors("run", batch, "--resume", "--quiet", "--no-log")
    _refused(refused, batch, "TrainFile was train.csv, is ../data/train.csv now")
    batch.write_text(text)
    done = _actors("run", batch, "--resume", "--quiet", "--no-log")
    assert done.returncode == 0, done.stderr
    assert not (moved / checkpoint.name).exists()  # the epoch finished: its checkpoint is gone
    rows = (moved / "results.csv").read_text().splitlines()[1:]
    assert [row.split(";")[0] for row in rows] == ["train", "test"]


def test_check_resume_without_a_checkpoint_is_refused_as_run_resume_is(mnist_dir, tmp_path) -> None:
    batch = _batch(thesis_folder(mnist_dir, tmp_path, 200, 50))
    for command in ("run", "check"):
        done = _actors(command, batch, "--resume", *(("--quiet", "--no-log") if command == "run" else ()))
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1
        assert (
            "nothing to resume: no persistence file of this batch records an interrupted pass" in done.stderr
        )
