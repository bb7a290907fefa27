"""Context switches: the kernel's per process of a pass, the event loop's per actor task."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import anyio
import pytest
from tiny_runs import TinyFolder

from actors.switches import Switches, TaskSwitches


def switches_of(run) -> dict[str, dict]:
    """The ``context_switches`` records of the run's only pass, by process."""
    records = run.events("context_switches")
    assert {record["index"] for record in records} == {1}
    return {record["process"]: record for record in records}


def test_a_pass_on_a_pool_of_two_processes_logs_voluntary_switches_for_each(tmp_path: Path) -> None:
    run = TinyFolder(tmp_path, train_lines=60).run(
        "Parallel: 2\nExecutor: process\nWorkerBatch: 5\nTrain: 1\n"
    )
    assert run.status == 0
    by_process = switches_of(run)
    assert set(by_process) == {"coordinator", "pool 0", "pool 1"}
    (start,) = run.events("run_start")
    assert by_process["coordinator"]["pid"] == start["pid"]
    pids = {record["pid"] for record in by_process.values()}
    assert len(pids) == 3
    for name in ("pool 0", "pool 1"):
        # Each pool process waits on its pipe between its six steps.
        assert by_process[name]["voluntary"] > 0, by_process[name]
        assert by_process[name]["involuntary"] >= 0 and by_process[name]["migrations"] >= 0
        assert "task_resumptions" not in by_process[name]  # the event loop is the coordinator's


def test_rendezvous_channels_resume_the_actor_tasks_more_often_per_round_than_unbounded_ones(
    tmp_path: Path,
) -> None:
    # The inline executor runs everything in the event loop's thread: the order of the tasks, and so
    # every count, is the same in every run.
    per_round = {}
    for capacity in ("0", "unbounded"):
        folder = tmp_path / capacity
        folder.mkdir()
        run = TinyFolder(folder, train_lines=40).run(
            "Parallel: 2\nExecutor: inline\nWorkerBatch: 1\n"
            f"DataChannelCapacity: {capacity}\nOutputChannelCapacity: {capacity}\nTrain: 1\n"
        )
        assert run.status == 0
        coordinator = switches_of(run)["coordinator"]
        (end,) = run.events("pass_end")
        assert end["rounds"] == 20
        assert set(coordinator["tasks"]) == {"coordinator", "worker 0", "worker 1"}
        assert coordinator["task_resumptions"] == sum(coordinator["tasks"].values())
        blocked = sum(s["blocked_sends"] + s["blocked_receives"] for s in run.events("channel_stats"))
        assert coordinator["blocked_operations"] == blocked
        per_round[capacity] = (
            coordinator["task_resumptions"] / end["rounds"],
            coordinator["blocked_operations"] / end["rounds"],
        )
    assert per_round["0"][0] > per_round["unbounded"][0]
    assert per_round["0"][1] > per_round["unbounded"][1]


def test_async_rounds_count_the_sender_task_too(tmp_path: Path) -> None:
    run = TinyFolder(tmp_path, train_lines=20).run(
        "Parallel: 2\nExecutor: inline\nWorkerBatch: 2\nRounds: Async\nTrain: 1\n"
    )
    assert run.status == 0
    tasks = switches_of(run)["coordinator"]["tasks"]
    assert set(tasks) == {"coordinator", "sender", "worker 0", "worker 1"}
    assert tasks["sender"] >= 1  # ten slices into a channel of two: it waited for the workers


def test_a_counted_task_is_resumed_once_per_time_it_gave_the_loop_control() -> None:
    async def yields(times: int) -> str:
        for _ in range(times):
            await anyio.lowlevel.checkpoint()
        return "done"

    async def fails() -> None:
        await anyio.sleep(0)
        raise LookupError("from the task")

    async def main() -> dict[str, int]:
        tasks = TaskSwitches()
        assert await tasks.run("seven", yields, 7) == "done"
        assert await tasks.run("none", yields, 0) == "done"
        with pytest.raises(LookupError, match="from the task"):
            await tasks.run("fails", fails)
        with anyio.move_on_after(0.05) as scope:
            await tasks.run("cancelled", anyio.sleep, 10)
        assert scope.cancelled_caught
        return tasks.counts()

    assert anyio.run(main) == {"seven": 7, "none": 0, "fails": 1, "cancelled": 1}


def test_a_thread_started_during_the_pass_adds_its_waits_to_its_process_voluntary_switches() -> None:
    switches = Switches(object())  # no executor processes: the coordinator's alone
    slept, release = threading.Event(), threading.Event()

    def sleeper() -> None:
        for _ in range(20):
            time.sleep(0.001)  # each gives up the CPU: a voluntary switch
        slept.set()
        release.wait()

    thread = threading.Thread(target=sleeper)
    thread.start()
    try:
        assert slept.wait(10)
        (coordinator,) = switches.since().processes
    finally:
        release.set()
        thread.join()
    assert (coordinator.process, coordinator.pid) == ("coordinator", os.getpid())
    assert coordinator.threads >= 2
    assert coordinator.voluntary >= 20  # the main thread alone waited once or twice
