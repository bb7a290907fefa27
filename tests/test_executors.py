"""The three executors on real MNIST data: same numbers, sane training, nothing left behind."""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import threading
import time
from dataclasses import dataclass, replace

import anyio
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
from anyio import wait_all_tasks_blocked
from pool_functions import attached_paths, sleep_then

from actors.coordinator import run_pass
from actors.executors.arena import Arena
from actors.executors.executor import EXECUTORS, Executor, make_executor
from actors.executors.pool import QUEUE_BYTES, ProcessDied, ProcessPool, RequestLost, fork_server
from actors.executors.process import ProcessExecutor
from actors.executors.step import run_step
from actors.messages import StepResult
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


async def train_then_test(
    name: str, parallel: int, subset, train_lines: int = TRAIN_LINES, executor: Executor | None = None
) -> Trained:
    """One training epoch over ``train_lines`` lines (seeded shuffle), one test pass, with ``name``
    (or ``executor``, closed here)."""
    train, test = subset
    train = Dataset(train.inputs[:train_lines], train.targets[:train_lines], train.source)
    executor = executor or make_executor(ExecutorName(name), parallel)
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
async def test_parallel_4_on_two_pool_processes_queues_two_steps_on_each_and_trains_sanely(subset) -> None:
    trained = await train_then_test("process", 4, subset, executor=ProcessExecutor(4, processes=2))
    assert np.isfinite(trained.weights).all()
    # Half the rounds of Parallel 2 over the same lines: 45-56 % here (the thread executor's too).
    assert 0.3 * TEST_LINES < trained.correct <= TEST_LINES
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


# The pool pipelines: a call writes its request at once, behind those its process has not answered.


async def queued(pool: ProcessPool, *calls: tuple) -> list:
    """Each of ``calls`` (function and arguments) in a task of its own, started in order: what each
    returned or raised."""
    outcomes: list = [None] * len(calls)

    async def call(index: int, function, *args) -> None:
        try:
            outcomes[index] = await pool.call(0, function, *args)
        except Exception as error:
            outcomes[index] = error

    async with anyio.create_task_group() as group:
        for index, (function, *args) in enumerate(calls):
            group.start_soon(call, index, function, *args)
    return outcomes


@pytest.mark.asyncio
async def test_a_busy_process_gets_the_next_request_before_its_reply_is_read(one_process) -> None:
    """The process goes from one call straight to the next: here the second call begins while the
    event loop, which would first have to read the first reply, is blocked."""
    await one_process.call(0, sleep_then, 0, None)  # the process has imported pool_functions
    outcomes: dict[str, tuple] = {}

    async def call(name: str, seconds: float) -> None:
        outcomes[name] = await one_process.call(0, sleep_then, seconds, name)

    async with anyio.create_task_group() as group:
        group.start_soon(call, "first", 0.2)
        group.start_soon(call, "second", 0)
        await wait_all_tasks_blocked()  # both requests written (or, one call at a time, the second waiting)
        time.sleep(1.0)  # the event loop cannot read the first reply meanwhile
        unblocked = time.monotonic()
    (_, _, first_ended), (_, second_began, _) = outcomes["first"], outcomes["second"]
    assert first_ended <= second_began < unblocked


@pytest.mark.asyncio
async def test_queued_calls_get_their_own_replies_in_the_order_of_the_calls(one_process) -> None:
    seconds = [0.05, 0, 0.02, None, 0.01, 0]  # None: a call that raises
    calls = [(int, "three") if s is None else (sleep_then, s, index) for index, s in enumerate(seconds)]
    with anyio.fail_after(30):
        outcomes = await queued(one_process, *calls)
    assert isinstance(outcomes[3], ValueError)
    served = [outcome for outcome in outcomes if not isinstance(outcome, Exception)]
    assert [value for value, _, _ in served] == [0, 1, 2, 4, 5]
    began = [began for _, began, _ in served]
    assert began == sorted(began)  # one after another, as called


@pytest.mark.asyncio
async def test_calls_beyond_what_a_pipe_may_hold_wait_for_room_and_get_their_own_replies(one_process) -> None:
    payload = b"x" * (QUEUE_BYTES // 8)  # a few queued fill the pipe's share
    with anyio.fail_after(60):
        outcomes = await queued(one_process, *((sleep_then, 0.001, (index, payload)) for index in range(40)))
    assert [outcome[0] for outcome in outcomes] == [(index, payload) for index in range(40)]


@pytest.mark.asyncio
async def test_a_big_request_behind_a_busy_process_does_not_deadlock_the_event_loop(one_process) -> None:
    """Written at once, 4 MB would fill the pipe while the process sleeps: the event loop would block in
    the write, and the process then in writing its 4 MB reply to the call before, which nobody reads."""
    big = 4_000_000
    watchdog = threading.Timer(60, lambda: [os.kill(pid, signal.SIGKILL) for pid in one_process.pids()])
    watchdog.start()  # a deadlock fails the test instead of hanging it
    try:
        outcomes = await queued(one_process, (sleep_then, 0.3, None), (bytes, big), (len, b"y" * big))
    finally:
        watchdog.cancel()
    assert outcomes[1:] == [bytes(big), big]


@pytest.mark.asyncio
async def test_a_process_killed_with_two_calls_queued_fails_both_and_its_replacement_serves_the_next(
    one_process,
) -> None:
    victim = one_process._workers[0]
    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            outcomes = []

            async def call(seconds: float) -> None:
                try:
                    outcomes.append(await one_process.call(0, sleep_then, seconds, None))
                except ProcessDied as error:
                    outcomes.append(error)

            group.start_soon(call, 30)
            group.start_soon(call, 0)
            await wait_all_tasks_blocked()
            os.kill(victim.process.pid, signal.SIGKILL)
    # The first found it dead; the second's request was lost with it.
    assert [type(outcome) for outcome in outcomes] == [ProcessDied, RequestLost]
    assert victim.connection.closed
    (replacement,) = one_process.pids()
    assert replacement != victim.process.pid
    assert await one_process.call(0, os.getpid) == replacement


@pytest.mark.asyncio
async def test_cancelling_one_queued_call_kills_its_process_and_loses_the_others_queued_there(
    one_process,
) -> None:
    """Its late answer would go to the call behind it: the process is killed, the calls before and
    after it get ``RequestLost``, and nobody waits out the first call's 30 seconds."""
    victim = one_process._workers[0]
    outcomes = {}
    middle = anyio.CancelScope()

    async def call(name: str, seconds: float) -> None:
        with middle if name == "middle" else contextlib.nullcontext():
            try:
                outcomes[name] = await one_process.call(0, sleep_then, seconds, name)
            except ProcessDied as error:
                outcomes[name] = error

    with anyio.fail_after(20):
        async with anyio.create_task_group() as group:
            for name, seconds in (("first", 30), ("middle", 0), ("last", 0)):
                group.start_soon(call, name, seconds)
            await wait_all_tasks_blocked()
            middle.cancel()
    assert sorted(outcomes) == ["first", "last"]
    assert all(isinstance(outcome, RequestLost) for outcome in outcomes.values())
    assert not victim.process.is_alive() and victim.connection.closed
    (replacement,) = one_process.pids()
    assert await one_process.call(0, os.getpid) == replacement != victim.process.pid


@pytest.mark.asyncio
async def test_calls_queued_on_a_process_and_cancelled_together_kill_it_once(monkeypatch) -> None:
    pool = ProcessPool(2, fork_server())
    try:
        before = pool.pids()
        victim = pool._workers[0]
        started = []
        start = pool._start
        monkeypatch.setattr(pool, "_start", lambda slot: started.append(slot) or start(slot))
        with anyio.fail_after(20):
            async with anyio.create_task_group() as group:
                for _ in range(3):
                    group.start_soon(pool.call, 0, time.sleep, 30)
                await wait_all_tasks_blocked()
                group.cancel_scope.cancel()
        assert started == [0]  # one replacement, not killed in turn by the next cancelled call
        assert not victim.process.is_alive() and victim.connection.closed
        after = pool.pids()
        assert after[0] != before[0] and after[1] == before[1]
        assert [await pool.call(index, os.getpid) for index in range(2)] == after
    finally:
        pool.close()


def test_a_step_result_crosses_a_pipe_as_its_fields_and_is_rebuilt_equal() -> None:
    result = StepResult(90, 1.5, -1, 0.0017, 123, 456, 4242, 4243)
    assert StepResult(*pickle.loads(pickle.dumps(result.fields()))) == result
    assert pickle.loads(pickle.dumps(result)) == result
    assert len(result.fields()) == len(StepResult._fields)  # a new field must be sent too
    assert type(result.fields()) is tuple  # no class to name in the pickle


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", ["train", "test"])
async def test_before_a_pass_each_worker_s_process_maps_its_arrays_and_nothing_changes(mode, subset) -> None:
    """``prepare`` rehearses a pass' first step in each worker's process before the pass is timed."""
    train, _ = subset
    executor = ProcessExecutor(2)
    try:
        with Arena() as arena:
            network = SharedNetwork(arena, 2)
            plan = network.plan(mode, share_data(arena, "train", train, np.arange(len(train))))
            work = plan.work
            specs = [work.inputs, work.labels, work.direct, work.order, work.main, work.replicas, work.state]
            paths = {spec.path for spec in specs if spec is not None}
            shared = [array for array in (network.main, network.replicas, plan.state) if array is not None]
            before = [array.copy() for array in shared]
            for worker in range(2):
                assert not paths & set(await executor._pool.call(worker, attached_paths))
            with anyio.fail_after(60):
                await executor.prepare(work)
            for worker in range(2):
                assert paths <= set(await executor._pool.call(worker, attached_paths))
            assert all(np.array_equal(a, b) for a, b in zip(before, shared, strict=True))
            assert (await run_pass(plan, executor)).lines == len(train)
    finally:
        executor.close()


@pytest.mark.asyncio
async def test_a_process_found_dead_before_a_pass_is_counted_and_replaced(subset) -> None:
    train, _ = subset
    losses: list[tuple] = []
    executor = ProcessExecutor(1, on_event=lambda name, **fields: losses.append((name, fields)))
    try:
        with Arena() as arena:
            network = SharedNetwork(arena, 1)
            plan = network.plan("train", share_data(arena, "train", train, np.arange(len(train))))
            victim = executor.pids()[0]
            os.kill(victim, signal.SIGKILL)
            assert wait_until(lambda: not running(victim))
            with anyio.fail_after(60):
                await executor.prepare(plan.work)
            heard = [(name, fields["start"], fields["stop"]) for name, fields in losses]
            assert heard == [("process_lost", 0, 0)]
            assert executor.restarts == 1 and victim not in executor.pids()
            assert (await run_pass(plan, executor)).lines == len(train)
            assert len(losses) == 1
    finally:
        executor.close()
