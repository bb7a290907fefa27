"""``bench speedup`` end to end on a small subset: the CSV's rows and speedups, the figures."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
from test_study_support import cli, png_size, read_rows

from actors.study.speedup import SpeedupPlan, specs

COLUMNS = {
    "workers",
    "repetition",
    "seed",
    "executor",
    "semantics",
    "worker_batch",
    "epoch",
    "epoch_seconds",
    "speedup",
    "test_accuracy",
    "overhead_seconds",
    "overhead_ms_per_round",
    "round_count",
    "train_lines",
    "test_lines",
    "load_average",
}


@pytest.fixture(scope="module")
def study(mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("speedup")
    from actors.cli import main

    code = main(
        [
            "bench",
            "speedup",
            "--workers",
            "1,2",
            "--epochs",
            "2",
            "--repeat",
            "2",
            "--executor",
            "thread",
            "--train-lines",
            "600",
            "--test-lines",
            "200",
            "--data",
            str(mnist_dir),
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    return out


def test_one_row_per_worker_count_repetition_and_epoch(study: Path) -> None:
    rows = read_rows(study / "speedup.csv")
    assert set(rows[0]) >= COLUMNS
    keys = sorted((int(r["workers"]), int(r["repetition"]), int(r["epoch"])) for r in rows)
    assert keys == [(w, r, e) for w in (1, 2) for r in (1, 2) for e in (1, 2)]
    for row in rows:
        assert int(row["seed"]) == 42 + int(row["repetition"]) - 1
        assert (int(row["train_lines"]), int(row["test_lines"])) == (600, 200)
        # 600 lines in slices of 100: 6 slices, one round per Parallel of them
        assert int(row["round_count"]) == 6 // int(row["workers"])
        assert 0.0 <= float(row["test_accuracy"]) <= 100.0


def test_speedup_is_the_median_one_worker_epoch_over_the_row_epoch(study: Path) -> None:
    rows = read_rows(study / "speedup.csv")
    t1 = statistics.median(float(r["epoch_seconds"]) for r in rows if r["workers"] == "1")
    for row in rows:
        assert float(row["speedup"]) == pytest.approx(t1 / float(row["epoch_seconds"]), rel=1e-12)


def test_every_run_leaves_a_batch_file_that_reruns_it(study: Path) -> None:
    batch = (study / "batches" / "workers2-rep2.txt").read_text()
    assert "Parallel: 2" in batch and "Seed: 43" in batch and "Executor: thread" in batch
    assert batch.count("Train: 1") == 2 and batch.count("Test: 1") == 2


def test_figures_are_pngs_of_the_announced_sizes(study: Path) -> None:
    assert png_size(study / "speedup.png") == (1200, 500)
    assert png_size(study / "accuracy.png") == (800, 500)
    assert png_size(study / "growth.png") == (800, 500)
    assert "| workers |" in (study / "speedup-summary.md").read_text()


def test_repetitions_are_interleaved_so_load_drift_hits_every_worker_count() -> None:
    order = [
        (s.labels["repetition"], s.labels["workers"]) for s in specs(SpeedupPlan(workers=(1, 4), repeat=2))
    ]
    assert order == [(1, 1), (1, 4), (2, 1), (2, 4)]


def test_a_bad_directive_is_a_one_line_user_error_before_anything_runs(
    mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(
        capsys,
        "bench",
        "speedup",
        "--workers",
        "1",
        "--train-lines",
        "100",
        "--test-lines",
        "100",
        "--data",
        mnist_dir,
        "--out",
        tmp_path,
        "--set",
        "Merge=Often",
        "--quiet",
    )
    assert code == 2
    assert "Merge" in err and "Often" in err
    assert not (tmp_path / "speedup.csv").exists()
