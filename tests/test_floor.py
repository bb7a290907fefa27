"""The floor benchmark: the same rounds as the runtime, so the same weights, with both drivers."""

from __future__ import annotations

import os
import statistics

import anyio
import numpy as np
from actor_helpers import SharedNetwork, share_data
from tiny_runs import LAMBDA, LEARNING_RATE, TinyFolder

from actors.coordinator import run_pass
from actors.executors.arena import Arena
from actors.executors.local import InlineExecutor
from actors.records.results import read_results
from actors.study.floor import (
    DRIVERS,
    RUNTIME,
    _Machine,
    main,
    measure,
    runtime_epoch,
    runtime_over_floor,
    summary,
)
from actors.study.kernel_bench import THESIS_LAYOUT
from brain.connectome import Connectome
from brain.data import Dataset, load_dataset
from brain.persistence import load_persistence

LINES = 1000


def test_both_drivers_train_the_same_weights_with_one_worker_and_sane_ones_with_two(mnist_dir):
    weights: dict = {}
    seconds = measure(mnist_dir, (1, 2), repeat=1, worker_batch=100, lines=LINES, weights=weights)
    initial = Connectome.uniform(THESIS_LAYOUT, -0.1, 0.1, 42).weights
    assert np.array_equal(weights["loop", 1], weights["asyncio", 1])
    assert not np.array_equal(weights["loop", 1], initial)
    for driver in DRIVERS:
        assert np.isfinite(weights[driver, 2]).all()
        assert not np.array_equal(weights[driver, 2], weights[driver, 1])  # 1/k merges of two replicas
    rows = summary(seconds)
    assert [(row["driver"], row["workers"]) for row in rows] == [(d, p) for d in DRIVERS for p in (1, 2)]
    assert all(row["median_seconds"] > 0 for row in rows)
    assert [row["speedup"] for row in rows if row["workers"] == 1] == [1.0, 1.0]


def test_the_weights_equal_the_runtimes_with_one_worker(mnist_dir):
    """One worker: a round is one step from the snapshot and one merge with k = 1, as in the runtime."""
    weights: dict = {}
    measure(mnist_dir, (1,), repeat=1, worker_batch=100, lines=LINES, weights=weights)
    train = load_dataset(mnist_dir / "train-images-idx3-ubyte.gz")
    train = Dataset(train.inputs[:LINES], train.targets[:LINES], train.source)
    order = np.random.default_rng([42, 1]).permutation(LINES)
    with Arena() as arena:
        network = SharedNetwork(arena, 1)
        plan = network.plan("train", share_data(arena, "train", train, order))
        anyio.run(run_pass, plan, InlineExecutor(1))
        np.testing.assert_array_equal(network.main, weights["loop", 1])


def test_the_floor_s_processes_are_pinned_batch_work_as_the_runtime_s(mnist_dir):
    machine = _Machine(mnist_dir, 2, 100, 42, LINES)
    try:
        cpus = sorted(os.sched_getaffinity(0))
        for worker, process in enumerate(machine.processes):
            assert os.sched_getscheduler(process.pid) == os.SCHED_BATCH
            assert os.sched_getaffinity(process.pid) == {cpus[worker % len(cpus)]}
    finally:
        machine.close()
    assert os.sched_getscheduler(0) == os.SCHED_OTHER


def test_bad_arguments_are_one_line_and_exit_2(capsys):
    assert main(["--workers", "0,2"]) == 2
    assert "--workers takes positive integers" in capsys.readouterr().err


def _tiny_batch(folder: TinyFolder, body: str = "WorkerBatch: 10\nTrain: 1\nTest: 1\n"):
    """The tiny folder's batch, with a PersistenceFile and a ResultFile of the user's own."""
    batch = folder.folder / "batch.txt"
    batch.write_text(
        "NetworkFile: net.txt\nTrainFile: train.csv\nTestFile: test.csv\n"
        "PersistenceFile: weights.npz\nResultFile: results.csv\n"
        f"LearningRate: {LEARNING_RATE}\nLambda: {LAMBDA}\n{body}"
    )
    return batch


def test_the_runtime_runs_beside_the_drivers_in_the_same_invocation(mnist_dir, tmp_path):
    folder = TinyFolder(tmp_path)
    batch = _tiny_batch(folder)
    weights_before = (tmp_path / "weights.npz").read_bytes()
    seconds = measure(mnist_dir, (1, 2), repeat=2, worker_batch=100, lines=LINES, runtime=batch)
    assert set(seconds) == {*DRIVERS, RUNTIME}
    for p in (1, 2):
        assert len(seconds[RUNTIME][p]) == 2 and all(value > 0 for value in seconds[RUNTIME][p])
        ratios = runtime_over_floor(seconds, p)
        assert ratios == [r / f for r, f in zip(seconds[RUNTIME][p], seconds["asyncio"][p], strict=True)]
        row = next(row for row in summary(seconds) if row["driver"] == RUNTIME and row["workers"] == p)
        assert row["over_floor"] == statistics.median(ratios)
        assert (row["over_floor_min"], row["over_floor_max"]) == (min(ratios), max(ratios))
    assert all("over_floor" not in row for row in summary(seconds) if row["driver"] != RUNTIME)
    # The batch's own files are neither written nor read: the runs' go into a temporary folder.
    assert (tmp_path / "weights.npz").read_bytes() == weights_before
    assert not (tmp_path / "results.csv").exists()


def test_a_runtime_run_has_the_worker_count_and_starts_from_the_batch_s_weights_every_time(tmp_path):
    folder = TinyFolder(tmp_path)
    batch = _tiny_batch(folder, "WorkerBatch: 10\nTrain: 1\n")
    runs = tmp_path / "runs"
    runs.mkdir()
    trained = []
    for workers in (1, 1, 2):
        assert runtime_epoch(batch, workers, runs) > 0
        rows = read_results(runs / "runtime.csv")
        assert [(row["Mode"], row["Parallel"]) for row in rows] == [("train", workers)]  # a fresh table
        trained.append(load_persistence(runs / "runtime-weights.txt").weights)
    # The second run did not go on from the first one's weights (one worker: the same numbers).
    np.testing.assert_array_equal(trained[0], trained[1])
    assert not np.array_equal(trained[0], folder.start.weights)


def test_a_runtime_batch_that_fails_or_trains_nothing_is_one_line_and_exit_2(mnist_dir, tmp_path, capsys):
    folder = TinyFolder(tmp_path)
    common = ["--data", str(mnist_dir), "--workers", "1", "--repeat", "1", "--lines", "100"]
    assert main([*common, "--runtime", str(tmp_path / "missing.txt")]) == 2
    said = capsys.readouterr().err.strip().splitlines()
    assert len(said) == 1 and said[0].startswith("error: --runtime: ") and "missing.txt" in said[0]
    assert main([*common, "--runtime", str(_tiny_batch(folder, "Test: 1\n"))]) == 2
    said = capsys.readouterr().err.strip().splitlines()
    assert len(said) == 1 and "first pass trains nothing" in said[0] and "batch.txt" in said[0]
    batch = _tiny_batch(folder, "Train: 1\n")
    batch.write_text(batch.read_text().replace("net.txt", "missing-net.txt"))
    assert main([*common, "--runtime", str(batch)]) == 2
    said = capsys.readouterr().err.strip().splitlines()  # the run's own error, its last line
    assert len(said) == 1 and said[0].startswith("error: --runtime: ") and "missing-net.txt" in said[0]


def test_the_runtime_s_ratio_is_printed(mnist_dir, tmp_path, capsys):
    batch = _tiny_batch(TinyFolder(tmp_path))
    args = [
        "--data",
        str(mnist_dir),
        "--workers",
        "2",
        "--repeat",
        "1",
        "--lines",
        "200",
        "--runtime",
        str(batch),
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "runtime        2" in out
    assert "runtime / asyncio floor, 2 workers: " in out and "(median of 1 pairs," in out
