"""``measure``: whole runs timed on copies of the files a batch writes, the user's files left as they were."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from actor_helpers import REPO, mnist_subset
from test_study_support import cli

from actors.cli import main
from brain.data import write_csv

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
    code, _, err = cli(capsys, "measure", trained_batch, "--run-option=--set=ResultFile=other.csv")
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "--run-option sets 'ResultFile=other.csv': measure runs on copies" in err
