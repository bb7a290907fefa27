"""The Go program's own files mean here what they meant there: persistence per block, tables, paths."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from actor_helpers import REPO, mnist_csv
from test_study_support import cli, png_size

from actors.batchfile.parse import parse_batch
from actors.records.results import read_results
from actors.study.plot import accuracy_series, read_table, time_series
from brain.persistence import load_persistence

TRAIN_LINES = 600
TEST_LINES = 200
NETWORK = "Identity, 784\nELU, 100\nSoftMax, 10"  # as the original's Data/Networks/Numbers: no final newline
HYPER = "WorkerBatch: 100\nLearningRate: 0.8\nLambda: 0.0000001\nMinWeight: -0.1\nMaxWeight: 0.1\n"
ORIGINAL_HEADER = (
    "Mode;CPUs;Parallel;WorkerBatch;LearningRate;WorkerSetupTime;EpochElapsedTime;EpochLines;"
    "TotalElapsedTime;TotalLines;Correct;Incorrect"
)


@pytest.fixture(scope="module")
def csv_files(mnist_dir, tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("go-csv")
    return mnist_csv(mnist_dir, folder, TRAIN_LINES, TEST_LINES, ("mnist_train.csv", "mnist_test.csv"))


def batch_file(folder: Path, csv_files: tuple[Path, Path], body: str, name: str = "batch.txt") -> Path:
    (folder / "net.txt").write_text(NETWORK)
    train, test = csv_files
    path = folder / name
    data = f"NetworkFile: net.txt\nTrainFile: {train}\nTestFile: {test}\nExecutor: inline\n"
    path.write_text(data + HYPER + body)
    return path


def run(capsys, batch: Path, *options: str) -> tuple[int, str, str]:
    return cli(capsys, "run", batch, "--quiet", "--no-log", *options)


@pytest.mark.parametrize("math", ["", "Semantics: Modern\nOptimizer: Momentum\nLearningRate: 0.05\n"])
def test_a_new_persistence_file_starts_a_new_experiment(csv_files, tmp_path, capsys, math) -> None:
    """The thesis' batch: a block per worker count, each with its own PersistenceFile.

    With modern math the optimizer's state (momentum) starts afresh with the weights.
    """
    both = tmp_path / "both"
    both.mkdir()
    first_block = f"{math}Parallel: 1\nPersistenceFile: 1-100\nResultFile: results-1\nTrain: 2\nTest: 1\n"
    second_block = f"{math}WorkerBatch: 50\nPersistenceFile: 2-100\nResultFile: results-2\nTrain: 1\n"
    batch = batch_file(both, csv_files, first_block + second_block)
    code, out, err = run(capsys, batch)
    assert code == 0, err
    assert "fresh weights, seed 42" in out
    alone = tmp_path / "alone"
    alone.mkdir()
    assert run(capsys, batch_file(alone, csv_files, second_block))[0] == 0

    continued = load_persistence(both / "2-100")
    fresh = load_persistence(alone / "2-100")
    assert np.array_equal(continued.weights, fresh.weights)
    assert (continued.epoch, continued.total_lines) == (1, TRAIN_LINES)
    assert load_persistence(both / "1-100").epoch == 2
    assert [row["Epoch"] for row in read_results(both / "results-2")] == [1]


def test_a_second_run_says_which_persistence_it_continues(csv_files, tmp_path, capsys) -> None:
    batch = batch_file(tmp_path, csv_files, "PersistenceFile: p.npz\nTrain: 1\n")
    assert run(capsys, batch)[0] == 0
    code, out, _ = run(capsys, batch)
    assert code == 0
    assert "p.npz, epoch 1" in out
    assert load_persistence(tmp_path / "p.npz").epoch == 2


def test_without_a_persistence_file_a_pass_continues_the_network_trained_above(
    csv_files, tmp_path, capsys
) -> None:
    batch = batch_file(tmp_path, csv_files, "Train: 1\nTest: 1\n")
    code, out, _ = run(capsys, batch)
    assert code == 0
    assert "in memory" in out


def test_a_test_pass_without_its_persistence_file_is_a_one_line_error(csv_files, tmp_path, capsys) -> None:
    batch = batch_file(tmp_path, csv_files, "Train: 1\nPersistenceFile: missing\nTest: 1\n")
    code, _, err = run(capsys, batch)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert f"{batch}:12:" in lines[0] and "missing does not exist" in lines[0]


def test_a_persistence_name_without_extension_is_written_at_exactly_that_path(
    csv_files, tmp_path, capsys
) -> None:
    batch = batch_file(tmp_path, csv_files, "PersistenceFile: 2-100\nTrain: 1\n")
    assert run(capsys, batch)[0] == 0
    assert (tmp_path / "2-100").is_file()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("2-100")) == ["2-100"]
    assert load_persistence(tmp_path / "2-100").epoch == 1


def test_result_rows_spell_the_mode_as_the_go_program(csv_files, tmp_path, capsys) -> None:
    batch = batch_file(tmp_path, csv_files, "ResultFile: r.csv\nTrain: 1\nTest: 1\n")
    assert run(capsys, batch)[0] == 0
    modes = [line.split(";")[0] for line in (tmp_path / "r.csv").read_text().splitlines()[1:]]
    assert modes == ["train", "test"]


def test_with_root_dot_paths_follow_the_root_and_other_relative_paths_the_working_folder(tmp_path) -> None:
    text = "NetworkFile: ./Data/net\nTrainFile: data/train.csv\nPersistenceFile: ../p\nTrain: 1\n"
    (tmp_path / "Data").mkdir()
    (tmp_path / "Data" / "net").write_text(NETWORK)
    batch = parse_batch(text, tmp_path / "Batchfile" / "Batch", root=tmp_path)
    settings = batch.passes[0].settings
    assert settings.network_file == tmp_path / "Data" / "net"
    assert settings.train_file == Path.cwd() / "data" / "train.csv"
    assert settings.persistence_file == tmp_path.parent / "p"
    default = parse_batch(text, tmp_path / "Batchfile" / "Batch").passes[0].settings
    assert default.train_file == tmp_path / "Batchfile" / "data" / "train.csv"


def test_the_original_layout_runs_unchanged_with_root(csv_files, tmp_path) -> None:
    """NeuroNet/Batchfile/Batch with ./Data/… paths, run from the folder above NeuroNet."""
    neuronet = tmp_path / "NeuroNet"
    for folder in ("Batchfile", "Data/Networks", "Data/Train", "Data/Test"):
        (neuronet / folder).mkdir(parents=True)
    (neuronet / "Data/Networks/Numbers").write_text(NETWORK)
    train, test = csv_files
    (neuronet / "Data/Train/mnist_train.csv").symlink_to(train)
    (neuronet / "Data/Test/mnist_test.csv").symlink_to(test)
    train_set, test_set = "./Data/Train/mnist_train.csv", "./Data/Test/mnist_test.csv"
    block = f"Train: 1\nTestFile: {train_set}\nTest: 1\nTestFile: {test_set}\nTest: 1\n"
    (neuronet / "Batchfile/Batch").write_text(
        f"NetworkFile: ./Data/Networks/Numbers\nTrainFile: {train_set}\n\nPreProcessing: None\n"
        f"{HYPER}TargetColumnStart: 0\nTargetColumnEnd: 1\n\nParallel: 1\n"
        "PersistenceFile: ./Data/Persistence/Full/1-100\nResultFile: ./Data/Result/FullResults-1\n\n"
        f"{block}\n{block}"
    )
    done = subprocess.run(
        [sys.executable, "-m", "actors", "run", "NeuroNet/Batchfile/Batch", "--root", "NeuroNet",
         "--quiet", "--no-log", "--set", "Executor=inline"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert load_persistence(neuronet / "Data/Persistence/Full/1-100").epoch == 2
    table = read_table(neuronet / "Data/Result/FullResults-1")
    assert [(p.mode, p.epoch, p.lines) for p in table.passes] == [
        ("train", 1, TRAIN_LINES), ("test", 1, TRAIN_LINES), ("test", 1, TEST_LINES),
        ("train", 2, TRAIN_LINES), ("test", 2, TRAIN_LINES), ("test", 2, TEST_LINES),
    ]  # fmt: skip


def original_table(path: Path, parallel: int, epochs: int) -> Path:
    """A result table as the Go program wrote it for the thesis: 12 columns, 10 decimals, lower case."""
    rows = [ORIGINAL_HEADER]
    for epoch in range(1, epochs + 1):
        total = f"{300.0 * epoch / parallel:.10f};{60000 * epoch}"
        epoch_time = f"{300.0 / parallel:.10f}"
        rows.append(f"train;8;{parallel};100;0.8000000000;0.0095099270;{epoch_time};60000;{total};;")
        for lines in (60000, 10000):
            correct = lines * (90 + epoch) // 100
            rows.append(
                f"test;8;{parallel};100;0.8000000000;0.0102546030;30.5000000000;{lines};{total};"
                f"{correct};{lines - correct}"
            )
    path.write_text("\n".join(rows) + "\n")
    return path


def test_an_original_twelve_column_table_is_read_by_its_header(tmp_path) -> None:
    table = read_table(original_table(tmp_path / "FullResults-4", parallel=4, epochs=3))
    assert table.describe() == "FullResults-4: 3 training epochs, 6 test passes"
    series = accuracy_series([table])
    assert [s.label for s in series] == [
        "FullResults-4: Parallel 4, test on 60,000 lines",
        "FullResults-4: Parallel 4, test on 10,000 lines",
    ]
    assert series[1].xs == (1, 2, 3)
    assert series[1].ys == pytest.approx((91.0, 92.0, 93.0))
    assert time_series([table])[0].xs == (4,) and time_series([table])[0].ys == (75.0,)


def test_tables_written_with_capitalised_modes_still_read(tmp_path) -> None:
    text = original_table(tmp_path / "t", 1, 2).read_text()
    text = text.replace("train;", "Train;").replace("test;", "Test;")
    (tmp_path / "old").write_text(text)
    assert read_table(tmp_path / "old").describe() == "old: 2 training epochs, 4 test passes"


def test_plot_draws_several_tables_side_by_side(tmp_path, capsys) -> None:
    tables = [original_table(tmp_path / f"FullResults-{p}", p, epochs=p + 1) for p in (1, 2, 4)]
    code, out, err = cli(capsys, "plot", *tables)
    assert code == 0, err
    for p in (1, 2, 4):
        assert f"FullResults-{p}: {p + 1} training epochs, {2 * (p + 1)} test passes" in out
    assert png_size(tmp_path / "plot.png") == (1200, 500)


def test_plot_of_one_original_table_says_what_it_drew(tmp_path, capsys) -> None:
    table = original_table(tmp_path / "FullResults-2", 2, epochs=100)
    code, out, _ = cli(capsys, "plot", table)
    assert code == 0
    assert "FullResults-2: 100 training epochs, 200 test passes" in out
    assert png_size(tmp_path / "FullResults-2.png") == (1000, 700)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "has no rows"),
        (ORIGINAL_HEADER + "\n", "has no rows"),
        ("5,0,0,0\n3,0,0,0\n", "not a result table"),
        (ORIGINAL_HEADER + "\nvalidate;8;1;100;0.8;0.1;1.0;10;1.0;10;;\n", "no train or test row"),
    ],
)
def test_plot_of_a_table_without_passes_is_a_one_line_error(tmp_path, capsys, content, message) -> None:
    path = tmp_path / "table"
    path.write_text(content)
    good = original_table(tmp_path / "good", 1, 1)
    for argv in ((path,), (good, path)):
        code, _, err = cli(capsys, "plot", *argv)
        assert code == 2
        assert len(err.strip().splitlines()) == 1 and message in err
    assert not list(tmp_path.glob("*.png"))


def test_tables_of_the_same_name_are_told_apart_by_their_folders(tmp_path, capsys) -> None:
    for folder in ("thesis", "ours"):
        (tmp_path / folder).mkdir()
        original_table(tmp_path / folder / "FullResults-1", 1, 2)
    code, out, _ = cli(capsys, "plot", tmp_path / "thesis/FullResults-1", tmp_path / "ours/FullResults-1")
    assert code == 0
    assert "thesis/FullResults-1: 2 training epochs" in out and "ours/FullResults-1: 2 training epochs" in out
