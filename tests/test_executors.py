"""The three executors on real MNIST data: same numbers, sane training, nothing left behind."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import numpy as np
import pytest
from actor_helpers import (
    SharedNetwork,
    cmdline,
    descendants,
    mnist_subset,
    parent,
    running,
    share_data,
    wait_until,
)

from actors.coordinator import run_pass
from actors.executors.arena import Arena
from actors.executors.executor import EXECUTORS, make_executor
from actors.executors.pool import ProcessDied
from actors.executors.process import ProcessExecutor
from actors.executors.step import run_step
from actors.vocabulary import ExecutorName
from brain.data import Dataset

# Parallel 1 must match bit for bit on any data: the first 3,000 lines suffice.  With Parallel 2
# the order of arrival varies; after 10,000 lines the accuracy has left the steep early part of
# the learning curve (roughly 65-80 %), so a bound there is stable.
IDENTITY_LINES = 3000
TRAIN_LINES = 10_000
TEST_LINES = 1000


@pytest.fixture(scope="module")
def subset(mnist_dir):
    return mnist_subset(mnist_dir, TRAIN_LINES, TEST_LINES)


@dataclass(frozen=True)
class Trained:
    initial: np.ndarray
    weights: np.ndarray
    correct: int
    error_sum: float
    test_lines: int


async def train_then_test(name: str, parallel: int, subset, train_lines: int = TRAIN_LINES) -> Trained:
    """One training epoch over ``train_lines`` lines (seeded shuffle), one test pass, with ``name``."""
    train, test = subset
    train = Dataset(train.inputs[:train_lines], train.targets[:train_lines], train.source)
    executor = make_executor(ExecutorName(name), parallel)
    try:
        with Arena() as arena:
            network = SharedNetwork(arena, parallel)
            initial = network.main.copy()
            order = np.random.default_rng(7).permutation(len(train))
            trained = await run_pass(
                network.plan("train", share_data(arena, "train", train, order)), executor
            )
            assert trained.lines == len(train)
            tested = await run_pass(
                network.plan("test", share_data(arena, "test", test, np.arange(len(test)))), executor
            )
            return Trained(initial, network.main.copy(), tested.correct, tested.error_sum, tested.lines)
    finally:
        executor.close()


@pytest.mark.asyncio
async def test_every_executor_gives_identical_weights_and_counts_with_parallel_1(subset) -> None:
    results = {name: await train_then_test(name, 1, subset, IDENTITY_LINES) for name in EXECUTORS}
    inline = results["inline"]
    assert not np.array_equal(inline.weights, inline.initial)
    for name in ("thread", "process"):
        assert np.array_equal(results[name].weights, inline.weights), name
        assert (results[name].correct, results[name].error_sum) == (inline.correct, inline.error_sum), name


@pytest.mark.asyncio
@pytest.mark.parametrize("name", EXECUTORS)
async def test_parallel_2_trains_to_finite_weights_and_a_sane_accuracy(name, subset) -> None:
    trained = await train_then_test(name, 2, subset)
    assert np.isfinite(trained.weights).all()
    assert not np.array_equal(trained.weights, trained.initial)
    assert trained.test_lines == TEST_LINES
    # Ten classes: chance is 10 %, and outputs of 0.1 each would give an error of 0.45 a line.
    assert 0.5 * TEST_LINES < trained.correct <= TEST_LINES
    assert 0.0 < trained.error_sum < 0.4 * TEST_LINES


@pytest.mark.asyncio
async def test_process_executor_leaves_no_process_and_the_arena_no_folder(subset) -> None:
    executor = ProcessExecutor(2)
    executor.warm_up()
    pool = executor.pids()
    try:
        assert len(pool) == 2 and all(running(pid) for pid in pool)
        with Arena() as arena:
            folder = arena.folder
            network = SharedNetwork(arena, 2)
            train = subset[0]
            order = np.arange(500)
            await run_pass(network.plan("train", share_data(arena, "train", train, order)), executor)
            assert sorted(p.name for p in folder.iterdir())[:2] == ["main.npy", "replicas.npy"]
    finally:
        executor.close()
    assert not folder.exists()
    assert wait_until(lambda: not any(running(pid) for pid in pool)), "pool processes outlived close()"
    # multiprocessing.active_children() cannot tell: the pool's processes are the fork
    # server's children.  What may stay is multiprocessing's own service processes (the
    # fork server, the resource tracker), children of this process shared by every pool.
    assert wait_until(lambda: all(is_service_process(pid) for pid in descendants(os.getpid())))


def is_service_process(pid: int) -> bool:
    command = cmdline(pid)
    return parent(pid) == os.getpid() and (
        "multiprocessing.forkserver" in command or "multiprocessing.resource_tracker" in command
    )


@pytest.mark.parametrize("rounds", ["Sync", "Async"])
def test_a_training_step_starts_its_replica_from_its_start_whatever_the_replica_held(rounds, subset) -> None:
    train = subset[0]
    with Arena() as arena:
        network = SharedNetwork(arena, 2)
        data = share_data(arena, "train", train, np.arange(200))
        work = network.plan("train", data).work
        if rounds == "Async":  # each worker's own start: a row per worker
            starts, spec = arena.array("starts", network.replicas.shape, np.float64)
            starts[0], starts[1] = 5.0, network.main
            work = replace(work, state=spec)
        else:  # the round's snapshot
            network.state[:] = network.main
        network.replicas[1] = network.main
        run_step(work, 1, 100, 200)
        expected = network.replicas[1].copy()
        network.replicas[1] = 7.0
        run_step(work, 1, 100, 200)
        np.testing.assert_array_equal(network.replicas[1], expected)
        assert not np.array_equal(expected, network.main)


@pytest.mark.asyncio
async def test_a_worker_always_finds_its_own_pool_process() -> None:
    executor = ProcessExecutor(2, pin=False)
    try:
        pool = executor._pool
        first = [await pool.call(worker, os.getpid) for worker in range(4)]
        again = [await pool.call(worker, os.getpid) for worker in range(4)]
        assert first == again
        assert first[0] == first[2] != first[1] == first[3]
        assert sorted(set(first)) == sorted(executor.pids())
    finally:
        executor.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("pin", [True, False])
async def test_pinned_pool_processes_run_on_one_cpu_each(pin) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    executor = ProcessExecutor(2, processes=2, pin=pin)
    try:
        affinities = [await executor._pool.call(index, os.sched_getaffinity, 0) for index in range(2)]
    finally:
        executor.close()
    if pin:
        assert affinities == [{cpus[0]}, {cpus[1 % len(cpus)]}]
    else:
        assert affinities == [set(cpus), set(cpus)]


@pytest.mark.asyncio
@pytest.mark.parametrize("batch", [True, False])
async def test_pool_processes_are_batch_work_to_the_scheduler_with_batch_scheduling(batch) -> None:
    """Woken with a request, a SCHED_BATCH process does not preempt the coordinator that woke it."""
    executor = ProcessExecutor(2, processes=2, batch_scheduling=batch)
    try:
        policies = [await executor._pool.call(index, os.sched_getscheduler, 0) for index in range(2)]
        executor._pool._workers[0].kill()  # a replaced process is batch work too
        with pytest.raises(ProcessDied):
            await executor._pool.call(0, os.getpid)
        policies.append(await executor._pool.call(0, os.sched_getscheduler, 0))
    finally:
        executor.close()
    assert policies == [os.SCHED_BATCH if batch else os.SCHED_OTHER] * 3
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the coordinator's own process is left as it was


@pytest.mark.parametrize("name", [ExecutorName.INLINE, ExecutorName.THREAD])
def test_executors_in_this_process_give_each_step_one_blas_thread_while_they_live(name) -> None:
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads() -> list[int]:
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    with threadpool_limits(2, user_api="blas"):  # as on a machine of two cores or more
        assert blas_threads() and set(blas_threads()) == {2}
        executor = make_executor(name, 2)
        try:
            assert set(blas_threads()) == {1}  # two steps at once on two cores, not four threads
        finally:
            executor.close()
        assert set(blas_threads()) == {2}
