"""``measure``: whole runs timed on copies of the files a batch writes, the user's files left as they were."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from actor_helpers import REPO, mnist_subset
from test_study_support import cli

from actors.cli import main
from actors.study.measure import _Copies
from brain.data import write_csv
from brain.errors import UserError

THESIS = "LearningRate: 0.8\nLambda: 1e-7\nMinWeight: -0.1\nMaxWeight: 0.1\nExecutor: inline\n"


@pytest.fixture
def trained_batch(mnist_dir: Path, tmp_path: Path) -> Path:
    """A batch whose PersistenceFile and ResultFile exist: it has run once."""
    train, test = mnist_subset(mnist_dir, 300, 100)
    write_csv(train, tmp_path / "train.csv")
    write_csv(test, tmp_path / "test.csv")
    (tmp_path / "net.txt").write_text("Identity, 784\nELU, 10\nSoftMax, 10\n")
    batch = tmp_path / "batch.txt"
    batch.write_text(
        "NetworkFile: net.txt\nTrainFile: train.csv\nTestFile: test.csv\n"
        f"PersistenceFile: weights.npz\nResultFile: results.csv\n{THESIS}Train: 1\nTest: 1\n"
    )
    assert main(["run", str(batch), "--no-log", "--quiet"]) == 0
    return batch


def test_measure_leaves_the_persistence_and_result_files_as_they_were(trained_batch: Path) -> None:
    folder = trained_batch.parent
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    done = subprocess.run(
        [sys.executable, "-m", "actors", "measure", str(trained_batch), "--repeat", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before
    copies = f"each run works on fresh copies of {folder / 'weights.npz'}, {folder / 'results.csv'}"
    assert done.stdout.startswith(copies)
    assert "run 1: " in done.stdout


def test_measure_refuses_a_run_option_that_sets_an_output_file(
    trained_batch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    option = "--set=ResultFile=other.csv"
    for given in ([f"--run-option={option}"], ["--run-option", option]):
        code, _, err = cli(capsys, "measure", trained_batch, *given)
        assert code == 2
        assert len(err.strip().splitlines()) == 1
        assert "--run-option sets 'ResultFile=other.csv': measure runs on copies" in err


def test_the_tree_is_followed_through_children_files_as_through_every_stat() -> None:
    from actors.study import measure

    shell = subprocess.Popen(["sh", "-c", "sleep 30 & sleep 30 & wait"])
    try:
        deadline = time.monotonic() + 10
        while len(measure._tree(shell.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        tree = measure._tree(shell.pid)
        assert len(tree) == 3 and tree[0] == shell.pid
        assert sorted(measure._children(shell.pid)) == sorted(measure._children_by_scan(shell.pid))
        assert 0 < measure._pss(tree) <= measure._rss(tree)
    finally:
        for pid in measure._tree(shell.pid)[1:]:
            os.kill(pid, signal.SIGKILL)
        shell.wait(10)
    assert measure._children(shell.pid) == [] and measure._rss([shell.pid]) == 0


def test_pss_is_read_less_often_than_rss(trained_batch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading PSS walks every page table of the tree; read at RSS' pace it slowed the run it measured."""
    from actors.study import measure

    reads = {"rss": 0, "pss": 0}

    def counted(name, read):
        def reading(tree):
            reads[name] += 1
            return read(tree)

        return reading

    monkeypatch.setattr(measure, "_rss", counted("rss", measure._rss))
    monkeypatch.setattr(measure, "_pss", counted("pss", measure._pss))
    run = measure.measure_run(trained_batch, [])
    assert run.peak_pss_mb > 0 and run.peak_rss_mb >= run.peak_pss_mb
    assert reads["pss"] <= run.seconds / measure.PSS_SECONDS + 1
    assert reads["rss"] >= run.seconds / measure.SAMPLE_SECONDS / 2 > reads["pss"]


def tiny_batch(folder: Path, outputs: str) -> Path:
    (folder / "net.txt").write_text("Identity, 3\nSoftMax, 2\n")
    (folder / "train.csv").write_text("0,1,2,3\n1,4,5,6\n")
    batch = folder / "batch.txt"
    batch.write_text(f"NetworkFile: net.txt\nTrainFile: train.csv\nExecutor: inline\n{outputs}Train: 1\n")
    return batch


@pytest.mark.parametrize("kind", ["a FIFO", "a directory"])
def test_measure_refuses_an_output_that_is_no_regular_file_before_copying_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    # Copied for every run, a FIFO would block measure and a device such as /dev/zero fill the disk.
    out = tmp_path / "out.csv"
    os.mkfifo(out) if kind == "a FIFO" else out.mkdir()
    batch = tiny_batch(tmp_path, "ResultFile: out.csv\n")
    code, stdout, err = cli(capsys, "measure", batch, "--repeat", "1")
    assert code == 2, err
    assert err.strip().splitlines() == [
        f"error: {batch}:5: ResultFile {out} is {kind}, not a regular file (allowed: a regular file, "
        "or a new name in a folder this run may write to)"
    ]
    assert "run 1" not in stdout


def test_measure_copies_only_regular_files_even_when_one_changes_after_the_check(tmp_path: Path) -> None:
    batch = tiny_batch(tmp_path, "ResultFile: out.csv\n")
    (tmp_path / "out.csv").write_text("")
    folder = tmp_path / "copies"
    folder.mkdir()
    copies = _Copies(batch, folder)
    copies.refresh()
    (tmp_path / "out.csv").unlink()
    os.mkfifo(tmp_path / "out.csv")  # between the pre-flight and a run's copy
    with pytest.raises(UserError, match="is a FIFO, not a regular file: measure cannot copy it"):
        copies.refresh()
