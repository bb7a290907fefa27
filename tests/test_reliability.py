"""Reliability: a pool process killed mid-pass, Ctrl-C / SIGTERM with a checkpoint, exact resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import numpy as np
import pytest
from actor_helpers import run_until_rounds
from anyio import wait_all_tasks_blocked
from pool_functions import sleep_then

from actors.coordinator import PassPlan, RoundRecord, run_pass
from actors.exceptions import single_error
from actors.executors.arena import Arena
from actors.executors.process import ProcessExecutor
from actors.executors.step import Workload
from brain.connectome import Connectome
from brain.data import Dataset, interpret_targets, load_dataset, write_csv
from brain.hyper import Hyper
from brain.layout import Layout
from brain.persistence import load_persistence
from brain.step import Math

REPO = Path(__file__).resolve().parent.parent
LAYOUT = Layout.of(("Identity", 784), ("ELU", 100), ("SoftMax", 10))
HYPER = Hyper(learning_rate=0.8, lambda_=1e-7)


@pytest.fixture(scope="module")
def mnist_small(mnist_dir):
    train = load_dataset(mnist_dir / "train-images-idx3-ubyte.gz")
    return Dataset(train.inputs[:6000], train.targets[:6000], "train[:6000]")


def _shared_pass(arena: Arena, data: Dataset, parallel: int) -> PassPlan:
    targets = interpret_targets(data, 10)
    _, inputs = arena.share("inputs", data.inputs)
    _, labels = arena.share("labels", targets.labels)
    _, direct = arena.share("direct", targets.direct)
    _, order = arena.share("order", np.random.default_rng(7).permutation(len(data)))
    main, main_spec = arena.share("main", Connectome.uniform(LAYOUT, -0.1, 0.1, 42).weights)
    replicas, replicas_spec = arena.array("replicas", (parallel, LAYOUT.n_weights), np.float64)
    state, state_spec = arena.array("state", (LAYOUT.n_weights,), np.float64)
    work = Workload(
        "train", inputs, labels, direct, order, main_spec, replicas_spec, Math(LAYOUT, HYPER),
        state=state_spec,
    )  # fmt: skip
    return PassPlan("train", len(data), parallel, 50, parallel, parallel, work, main, replicas, state=state)


@pytest.mark.asyncio
async def test_a_pool_process_killed_mid_pass_is_replaced_and_every_line_is_trained_once(mnist_small):
    events = []
    executor = ProcessExecutor(2, on_event=lambda name, **fields: events.append((name, fields)))
    executor.warm_up()
    killed = []
    lines_per_round = []
    try:
        with Arena() as arena:
            plan = _shared_pass(arena, mnist_small, 2)
            before = plan.main.copy()

            def on_round(record: RoundRecord) -> None:
                lines_per_round.append(sum(len(r.slice) for r in record.reports))
                if record.round == 10 and not killed:
                    victim = executor.pids()[0]
                    os.kill(victim, signal.SIGKILL)
                    killed.append(victim)

            outcome = await run_pass(plan, executor, on_round)
            assert killed, "the test never killed a process"
            assert outcome.lines == len(mnist_small) == sum(lines_per_round)
            assert outcome.cursor == len(mnist_small)
            assert sum(tally.lines for tally in outcome.workers) == len(mnist_small)
            assert np.isfinite(plan.main).all()
            assert not np.array_equal(plan.main, before)
            assert executor.restarts >= 1
            assert killed[0] not in executor.pids()
            assert any(name == "process_lost" for name, _ in events)
    finally:
        executor.close()


@pytest.mark.asyncio
async def test_a_pool_that_keeps_dying_gives_up_with_one_clear_error(mnist_small):
    from actors.executors.process import WorkerLost

    executor = ProcessExecutor(1)
    executor.max_failures = 1
    executor.warm_up()
    try:
        with Arena() as arena:
            plan = _shared_pass(arena, mnist_small, 1)

            def on_round(record: RoundRecord) -> None:
                for pid in executor.pids():
                    os.kill(pid, signal.SIGKILL)

            async def kill_whenever_it_starts():
                while True:
                    for pid in executor.pids():
                        os.kill(pid, signal.SIGKILL)
                    await anyio.sleep(0.005)

            with pytest.raises(WorkerLost, match=r"died .* times in a row"), single_error():
                async with anyio.create_task_group() as group:
                    group.start_soon(kill_whenever_it_starts)
                    try:
                        await run_pass(plan, executor, on_round)
                    finally:
                        group.cancel_scope.cancel()
    finally:
        executor.close()


async def _two_steps_queued_on_one_process(monkeypatch, max_failures: int, then) -> tuple[dict, list]:
    """Steps of workers 0 and 1 queued on a pool of one process -- worker 0's takes 30 s the first
    time, every other step none -- then ``then(pid, scopes)`` (the process, each step's cancel
    scope): what each step returned (a step cancelled returns nothing) and the losses heard."""
    losses = []
    executor = ProcessExecutor(
        2,
        processes=1,
        on_event=lambda name, **fields: losses.append((name, fields["worker"], fields["failures_in_a_row"])),
    )
    executor.max_failures = max_failures
    calls = []

    async def call(work, worker, start, stop):
        calls.append(worker)
        return await executor._pool.call(worker, sleep_then, 30 if calls == [0] else 0, worker)

    monkeypatch.setattr(executor, "_call", call)
    results = {}
    scopes = [anyio.CancelScope(), anyio.CancelScope()]

    async def run(worker: int) -> None:
        with scopes[worker]:
            results[worker] = (await executor.run(None, worker, 0, 100))[0]

    try:
        victim = executor.pids()[0]
        with anyio.fail_after(20):
            async with anyio.create_task_group() as group:
                for worker in range(2):
                    group.start_soon(run, worker)
                await wait_all_tasks_blocked()
                then(victim, scopes)
        assert victim not in executor.pids()
    finally:
        executor.close()
    return results, losses


@pytest.mark.asyncio
async def test_steps_queued_on_a_process_that_dies_run_again_and_its_death_counts_once(monkeypatch):
    # With max_failures 1, two deaths counted would end the pass.
    results, losses = await _two_steps_queued_on_one_process(
        monkeypatch, 1, lambda pid, scopes: os.kill(pid, signal.SIGKILL)
    )
    assert results == {0: 0, 1: 1}
    # Worker 1's request was lost with the process whose death worker 0 counted.
    assert losses == [("process_lost", 0, 1), ("process_lost", 1, 1)]


@pytest.mark.asyncio
async def test_a_step_whose_request_died_with_another_steps_cancellation_runs_again_uncounted(monkeypatch):
    """Cancelling worker 0's step kills the process worker 1's step is queued on: no process failed."""
    results, losses = await _two_steps_queued_on_one_process(
        monkeypatch, 0, lambda pid, scopes: scopes[0].cancel()
    )
    assert results == {1: 1}
    assert losses == [("process_lost", 1, 0)]


def _write_batch(folder: Path, data_csv: Path, executor: str = "process", math: str = "") -> Path:
    (folder / "net.txt").write_text("Identity, 784\nELU, 100\nSoftMax, 10\n")
    batch = folder / "batch.txt"
    batch.write_text(
        f"NetworkFile: net.txt\nTrainFile: {data_csv}\nTestFile: {data_csv}\n"
        "PersistenceFile: weights.npz\nResultFile: results.csv\n"
        "LearningRate: 0.8\nLambda: 1e-7\nMinWeight: -0.1\nMaxWeight: 0.1\n"
        f"{math}Parallel: 1\nWorkerBatch: 5\nExecutor: {executor}\nTrain: 2\nTest: 1\n"
    )
    return batch


@pytest.fixture(scope="module")
def small_csv(mnist_small, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("csv") / "train.csv"
    write_csv(mnist_small, path)
    return path


def _run(batch: Path, *extra: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "actors", "run", str(batch), "--quiet", *extra],
        cwd=REPO, capture_output=True, text=True, timeout=240, **kwargs,
    )  # fmt: skip


def _interrupt_after_rounds(batch: Path, logs: Path, signum: int, rounds: int = 50) -> subprocess.Popen:
    """Start a run and send ``signum`` once its log shows ``rounds`` rounds of the first pass."""
    process = run_until_rounds(batch, logs, rounds)
    process.send_signal(signum)
    return process


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_saves_a_checkpoint_and_resume_reaches_the_uninterrupted_weights(
    tmp_path, small_csv, signum, code
):
    straight = tmp_path / "straight"
    broken = tmp_path / "broken"
    straight.mkdir()
    broken.mkdir()
    assert _run(_write_batch(straight, small_csv), "--no-log").returncode == 0

    batch = _write_batch(broken, small_csv)
    process = _interrupt_after_rounds(batch, broken / "logs", signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr
    assert "checkpoint saved to" in stderr and "--resume" in stderr
    checkpoint = load_persistence(broken / "weights.npz")
    assert checkpoint.epoch == 0 and 0 < checkpoint.epoch_lines_done < 6000
    assert checkpoint.epoch_lines_done % 5 == 0  # whole rounds only
    assert (checkpoint.batch_pass, checkpoint.batch_repetition) == (1, 1)
    assert (checkpoint.result_file, checkpoint.result_row) == ("", "")  # an interrupted pass writes no row
    assert not list(Path("/dev/shm").glob(f"goconcurrent-{process.pid}-*"))

    resumed = _run(batch, "--resume", "--no-log")
    assert resumed.returncode == 0, resumed.stderr
    done = load_persistence(broken / "weights.npz")
    reference = load_persistence(straight / "weights.npz")
    assert done.epoch == reference.epoch == 2
    assert done.total_lines == reference.total_lines == 12000
    assert np.array_equal(done.weights, reference.weights)
    rows = (broken / "results.csv").read_text().splitlines()
    assert [row.split(";")[0] for row in rows[1:]] == ["train", "train", "test"]
    assert done.result_row == rows[2]  # the persistence names the row of the pass that wrote it
    straight_rows = (straight / "results.csv").read_text().splitlines()
    assert rows[-1].split(";")[10:12] == straight_rows[-1].split(";")[10:12]


MOMENTUM = "Semantics: Modern\nOptimizer: Momentum\nLearningRate: 0.05\nLambda: 0\n"


def test_an_interrupted_modern_pass_resumes_to_the_uninterrupted_weights_and_optimizer_state(
    tmp_path, small_csv
):
    """The checkpoint carries each replica's optimizer state as it was after the last whole round."""
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    straight.mkdir()
    broken.mkdir()
    assert _run(_write_batch(straight, small_csv, math=MOMENTUM), "--no-log").returncode == 0
    batch = _write_batch(broken, small_csv, math=MOMENTUM)
    process = _interrupt_after_rounds(batch, broken / "logs", signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert 0 < load_persistence(broken / "weights.npz").epoch_lines_done < 6000
    assert _run(batch, "--resume", "--no-log").returncode == 0
    done, reference = load_persistence(broken / "weights.npz"), load_persistence(straight / "weights.npz")
    assert np.array_equal(done.weights, reference.weights)
    assert sorted(done.extra) == sorted(reference.extra) and len(done.extra) >= 2
    for name in reference.extra:
        assert np.array_equal(done.extra[name], reference.extra[name]), name


def test_resume_without_a_checkpoint_is_one_clear_error(tmp_path, small_csv):
    batch = _write_batch(tmp_path, small_csv)
    result = _run(batch, "--resume", "--no-log")
    assert result.returncode == 2
    assert "nothing to resume" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_second_signal_abandons_the_round_and_still_leaves_a_consistent_checkpoint(tmp_path, small_csv):
    batch = _write_batch(tmp_path, small_csv)
    process = _interrupt_after_rounds(batch, tmp_path / "logs", signal.SIGINT)
    time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    checkpoint = load_persistence(tmp_path / "weights.npz")  # whole, loadable: never half-written
    assert 0 < checkpoint.epoch_lines_done < 6000 and checkpoint.epoch_lines_done % 5 == 0
    assert np.isfinite(checkpoint.weights).all()
    resumed = _run(batch, "--resume", "--no-log")
    assert resumed.returncode == 0, resumed.stderr
    assert load_persistence(tmp_path / "weights.npz").epoch == 2


@pytest.mark.parametrize("when", ["the run's last moment in the event loop", "the runner's clean-up"])
def test_a_signal_after_the_runs_signal_watcher_is_gone_neither_cuts_the_end_short_nor_leaks(
    tmp_path, mnist_small, monkeypatch, when
):
    # A second Ctrl-C can land after the run's watcher has closed, while the runner shuts its pool,
    # removes shared memory and closes the log: it is ignored there, and the command gives the
    # handlers back when it returns.
    from actors.cli import main as cli
    from actors.runner import Runner

    write_csv(Dataset(mnist_small.inputs[:300], mnist_small.targets[:300], "train[:300]"), tmp_path / "d.csv")
    batch = _write_batch(tmp_path, tmp_path / "d.csv", executor="inline")
    batch.write_text(
        batch.read_text().replace("WorkerBatch: 5", "WorkerBatch: 100").replace("Train: 2", "Train: 1")
    )
    run, leave = Runner.run, Runner.__exit__

    async def interrupted_run(self, *args):
        await run(self, *args)
        os.kill(os.getpid(), signal.SIGINT)  # delivered at once: this is the main thread
        await anyio.sleep(0.01)

    def interrupted_exit(self, *exc):
        os.kill(os.getpid(), signal.SIGINT)
        return leave(self, *exc)

    if when == "the runner's clean-up":
        monkeypatch.setattr(Runner, "__exit__", interrupted_exit)
    else:
        monkeypatch.setattr(Runner, "run", interrupted_run)
    before = signal.getsignal(signal.SIGINT)
    assert cli(["run", str(batch), "--quiet", "--log-dir", str(tmp_path / "logs")]) == 0
    assert signal.getsignal(signal.SIGINT) is before
    (log,) = (tmp_path / "logs").glob("*.jsonl")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records[-1]["event"] == "run_end" and records[-1]["status"] == "ok"
    assert load_persistence(tmp_path / "weights.npz").epoch == 1
