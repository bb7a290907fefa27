"""When things happened: one clock for every process, each slice's moments in the log, blocked intervals."""

from __future__ import annotations

import multiprocessing
from dataclasses import fields

import pytest
from anyio import create_task_group, wait_all_tasks_blocked
from anyio.lowlevel import checkpoint
from tiny_runs import TinyFolder, TinyRun

from actors.clock import now, place
from actors.messages import MOMENTS, Moments
from channels import Channel
from channels.stats import acting_as

# A slice's moments in the order they must have happened, one actor after the other:
# the coordinator sends, the worker takes it and hands it to its process, the process
# computes, the worker reports, the coordinator takes the report and merges it.
IN_ORDER = (
    ("send_began", "sent"),
    ("send_began", "received"),
    ("asked", "received"),
    ("received", "step_called"),
    ("step_called", "step_began"),
    ("step_began", "step_ended"),
    ("step_ended", "step_returned"),
    ("step_returned", "report_sent"),
    ("step_returned", "report_received"),
    ("receive_began", "report_received"),
    ("report_received", "merge_began"),
    ("merge_began", "merge_ended"),
)


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    """Sync rounds of 2 workers in 2 pool processes, rendezvous channels: every hand-over waits."""
    folder = TinyFolder(tmp_path_factory.mktemp("moments"))
    return folder.run(
        "Parallel: 2\nWorkerBatch: 5\nDataChannelCapacity: 0\nOutputChannelCapacity: 0\nTrain: 1\nTest: 1\n"
    )


def _stamp(queue) -> None:
    queue.put(now())


def test_the_clock_is_one_across_processes() -> None:
    """A reading in a child process lies between two readings of its parent around it."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_stamp, args=(queue,))
    before = now()
    child.start()
    theirs = queue.get(timeout=60)
    child.join()
    after = now()
    assert before < theirs < after


def test_the_logged_moments_are_the_fields_of_moments() -> None:
    assert tuple(field.name for field in fields(Moments)) == MOMENTS


def test_place_is_this_process_and_thread() -> None:
    import os
    import threading

    assert place() == (os.getpid(), threading.get_native_id())


def test_every_slice_has_every_moment_in_the_order_it_happened(logged: TinyRun) -> None:
    """Across the event loop's process and the pool's: the step lies inside the worker's wait for it.

    The last report of a rendezvous round is stamped sent only once its worker runs
    again, after the coordinator took it: the round must be logged after that.
    """
    pieces = [piece for record in logged.rounds(1) for piece in record["slices"]]
    assert len(pieces) == 9  # 42 lines in slices of 5
    for piece in pieces:
        at = piece["at"]
        assert all(isinstance(value, int) and value > 0 for value in at.values()), at
        for earlier, later in IN_ORDER:
            assert at[earlier] <= at[later], (earlier, later, at)
        assert piece["process"] != logged.events("run_start")[0]["pid"]  # the step ran in a pool process


def test_a_test_pass_merges_nothing(logged: TinyRun) -> None:
    pieces = [piece for record in logged.rounds(2) for piece in record["slices"]]
    assert pieces and all(piece["at"]["merge_began"] is None for piece in pieces)
    assert all(piece["at"]["report_received"] is not None for piece in pieces)


def test_moments_are_relative_to_the_pass_start(logged: TinyRun) -> None:
    starts = logged.events("pass_start")
    assert all(isinstance(start["clock_ns"], int) for start in starts)
    assert starts[1]["clock_ns"] > starts[0]["clock_ns"]
    first = logged.rounds(1)[0]["slices"][0]["at"]
    assert 0 < first["send_began"] < 10**11  # ns after the pass began, not a reading of the clock


def test_blocked_intervals_are_logged_with_who_blocked(logged: TinyRun) -> None:
    stats = {record["channel"]: record for record in logged.events("channel_stats") if record["index"] == 1}
    for channel in ("data", "output"):
        record = stats[channel]
        for side in ("sends", "receives"):
            intervals = record[f"blocked_{side}_at"]
            assert len(intervals) == record[f"blocked_{side}"]
            assert all(0 <= began <= ended for _, began, ended in intervals)
    receivers = {who for who, _, _ in stats["data"]["blocked_receives_at"]}
    assert receivers <= {"worker 0", "worker 1"} and receivers
    assert {who for who, _, _ in stats["output"]["blocked_receives_at"]} == {"coordinator"}


@pytest.mark.asyncio
async def test_a_timeline_channel_keeps_each_blocked_operation_and_its_party() -> None:
    timed: Channel[int] = Channel(0, name="timed", timeline=True)
    plain: Channel[int] = Channel(0, name="plain")

    async def receive_as(channel: Channel[int], who: str) -> None:
        with acting_as(who):
            await channel.receive()

    moments = []
    for channel in (timed, plain):
        async with create_task_group() as group:
            group.start_soon(receive_as, channel, "worker 7")
            await wait_all_tasks_blocked()
            moments.append(now())  # the receiver is blocked now
            await checkpoint()
            await channel.send(1)
    before = moments[0]
    sends, receives = timed.blocked_intervals()
    assert sends == ()  # the receiver was waiting: the send did not block
    ((who, began, ended),) = receives
    assert who == "worker 7" and began < before <= ended
    assert plain.blocked_intervals() == ((), ())
    timed.reset_stats()
    assert timed.blocked_intervals() == ((), ())


def test_the_recording_bench_reports_both_costs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from actors.study import recording_bench

    monkeypatch.setattr("sys.argv", ["recording_bench", "--rounds", "20", "--repeat", "1"])
    recording_bench.main()
    printed = capsys.readouterr().out
    assert "a round event of 2 slices" in printed
    assert "20 rounds, 40 slices" in printed and "with --no-log" in printed
