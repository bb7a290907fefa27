"""The pool's replies: one reader callback per process, registered at its first call, reads them all."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from actors.executors.pool import ProcessDied

HANG = 30.0


def _count_readers(loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    counts = {"added": 0, "removed": 0}
    add, remove = loop.add_reader, loop.remove_reader

    def added(fd, callback, *args):
        counts["added"] += 1
        return add(fd, callback, *args)

    def removed(fd):
        counts["removed"] += 1
        return remove(fd)

    monkeypatch.setattr(loop, "add_reader", added)
    monkeypatch.setattr(loop, "remove_reader", removed)
    return counts


@pytest.mark.asyncio
async def test_a_process_is_watched_by_one_reader_from_its_first_call_to_close(
    one_process, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = asyncio.get_running_loop()
    counts = _count_readers(loop, monkeypatch)
    async with asyncio.timeout(HANG):
        pids = [await one_process.call(0, os.getpid) for _ in range(20)]
    assert len(set(pids)) == 1
    assert counts == {"added": 1, "removed": 0}  # not one reader added and removed per call
    fd = one_process._workers[0].fd
    one_process.close()
    assert counts["removed"] == 1
    assert not loop.remove_reader(fd)  # nothing left registered


@pytest.mark.asyncio
async def test_a_process_that_dies_while_idle_is_found_dead_by_the_next_call(one_process) -> None:
    loop = asyncio.get_running_loop()
    errors: list[dict] = []
    loop.set_exception_handler(lambda loop, context: errors.append(context))
    async with asyncio.timeout(HANG):
        first = await one_process.call(0, os.getpid)
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + HANG
        while not one_process._workers[0].exited and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # the reader reads EOF while no call waits
        with pytest.raises(ProcessDied, match=f"worker process {first} exited"):
            await one_process.call(0, os.getpid)
        replacement = await one_process.call(0, os.getpid)
    assert replacement != first
    assert errors == []


def test_a_pool_called_under_a_second_event_loop_still_gets_its_replies(one_process) -> None:
    async def pid() -> int:
        async with asyncio.timeout(HANG):
            return await one_process.call(0, os.getpid)

    first = asyncio.run(pid())  # that loop is closed with the pipe still registered in it
    assert asyncio.run(pid()) == first
