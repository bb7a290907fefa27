"""``bench speedup`` end to end on a small subset: the CSV's rows and speedups, the figures."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
from test_study_support import cli, png_size, read_rows

from actors.study.speedup import SpeedupPlan, karp_flatt, specs, time_to_target
from actors.study.tables import group

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
    "efficiency",
    "serial_fraction",
    "floor_speedup",
    "floor_loop_speedup",
    "seconds_to_target",
    "epochs_to_target",
}
TARGET = 5  # % test accuracy: every run reaches it after its first epoch, even on 600 lines


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
            "--target",
            str(TARGET),
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


def test_efficiency_and_karp_flatt_serial_fraction_follow_from_each_rows_speedup(study: Path) -> None:
    for row in read_rows(study / "speedup.csv"):
        speedup, workers = float(row["speedup"]), int(row["workers"])
        assert float(row["efficiency"]) == pytest.approx(speedup / workers, rel=1e-12)
        if workers == 1:
            assert row["serial_fraction"] == ""  # (1/S − 1/P)/(1 − 1/P) is 0/0
        else:
            expected = (1 / speedup - 1 / workers) / (1 - 1 / workers)
            assert float(row["serial_fraction"]) == pytest.approx(expected, rel=1e-12)


def test_the_floor_ran_in_the_same_invocation_for_each_worker_count(study: Path) -> None:
    rows = read_rows(study / "speedup.csv")
    for column in ("floor_speedup", "floor_loop_speedup"):
        by_workers = {w: {r[column] for r in rows if r["workers"] == w} for w in ("1", "2")}
        assert by_workers["1"] == {"1.0"}  # the floor's own one-worker epoch is its baseline
        (two,) = by_workers["2"]
        assert float(two) > 0
    summary = (study / "speedup-summary.md").read_text()
    assert "floor's speedup asyncio/loop" in summary and "1.00×/1.00×" in summary


def test_seconds_to_target_are_the_runs_training_seconds_until_a_test_reached_it(study: Path) -> None:
    rows = read_rows(study / "speedup.csv")
    for mine in group(rows, lambda r: (r["workers"], r["repetition"])).values():
        mine.sort(key=lambda r: int(r["epoch"]))
        seconds, expected = 0.0, ("", "")
        for row in mine:
            seconds += float(row["epoch_seconds"])
            if float(row["test_accuracy"]) >= TARGET:
                expected = (seconds, int(row["epoch"]))
                break
        assert expected != ("", ""), "every run should reach the low target"
        for row in mine:
            assert float(row["seconds_to_target"]) == pytest.approx(expected[0], rel=1e-12)
            assert int(row["epochs_to_target"]) == expected[1]
    assert f"training to {TARGET} % (s)" in (study / "speedup-summary.md").read_text()


def test_time_to_target_adds_the_epochs_until_the_first_test_at_or_above_it() -> None:
    epochs = [(1.0, 80.0), (2.0, 91.99), (1.5, 92.0), (1.0, 95.0)]
    assert time_to_target(epochs, 92) == (4.5, 3)
    assert time_to_target(epochs, 80) == (1.0, 1)
    assert time_to_target(epochs, 96) is None
    assert time_to_target(epochs, None) is None


def test_karp_flatt_is_zero_for_a_linear_speedup_and_one_for_none() -> None:
    assert karp_flatt(4.0, 4) == pytest.approx(0.0)
    assert karp_flatt(1.0, 4) == pytest.approx(1.0)
    assert karp_flatt(1.6, 2) == pytest.approx(0.25)  # 1/1.6 = 0.625: (0.625 − 0.5) / 0.5
    assert karp_flatt(1.0, 1) == ""


def test_every_run_leaves_a_batch_file_that_reruns_it(study: Path) -> None:
    batch = (study / "batches" / "workers2-rep2.txt").read_text()
    assert "Parallel: 2" in batch and "Seed: 43" in batch and "Executor: thread" in batch
    assert batch.count("Train: 1") == 2 and batch.count("Test: 1") == 2


def test_figures_are_pngs_of_the_announced_sizes(study: Path) -> None:
    assert png_size(study / "speedup.png") == (1200, 500)
    assert png_size(study / "efficiency.png") == (1200, 500)
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


@pytest.mark.parametrize("option", ["--out", "--log-dir"])
def test_an_output_folder_that_is_a_file_is_refused_before_any_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    taken = tmp_path / "taken"
    taken.write_text("")
    out = ["--out", tmp_path / "out"] if option == "--log-dir" else []
    code, stdout, err = cli(capsys, "bench", "speedup", "--workers", "1", *out, option, taken)
    assert code == 2 and stdout == ""
    what = "output folder" if option == "--out" else "log folder"
    assert err.strip() == (
        f"error: {taken}: the {what} cannot be created: {taken} is a regular file, not a folder"
        " (allowed: a folder, or a new name)"
    )
