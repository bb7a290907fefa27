"""The floor benchmark: the same rounds as the runtime, so the same weights, with both drivers."""

from __future__ import annotations

import os

import anyio
import numpy as np
from actor_helpers import SharedNetwork, share_data

from actors.coordinator import run_pass
from actors.executors.arena import Arena
from actors.executors.local import InlineExecutor
from actors.study.floor import DRIVERS, _Machine, main, measure, summary
from actors.study.kernel_bench import THESIS_LAYOUT
from brain.connectome import Connectome
from brain.data import Dataset, load_dataset

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
