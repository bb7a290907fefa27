"""``pool.readable``: the pool's wait for a pipe, on the loop's own reader callback."""

from __future__ import annotations

import asyncio
import os

import anyio
import pytest

from actors.executors import pool

HANG = 5.0


@pytest.fixture
def pipe():
    read_end, write_end = os.pipe()
    yield read_end, write_end
    os.close(read_end)
    os.close(write_end)


@pytest.mark.asyncio
async def test_the_wait_ends_when_the_pipe_has_data_and_leaves_no_reader_behind(pipe) -> None:
    read_end, write_end = pipe
    loop = asyncio.get_running_loop()
    loop.call_later(0.01, os.write, write_end, b"x")
    with anyio.fail_after(HANG):
        await pool.readable(read_end)
    assert os.read(read_end, 1) == b"x"
    assert not loop.remove_reader(read_end)  # nothing was left registered


@pytest.mark.asyncio
async def test_a_cancelled_wait_removes_its_reader_and_data_arriving_later_troubles_nobody(pipe) -> None:
    read_end, write_end = pipe
    loop = asyncio.get_running_loop()
    errors: list[dict] = []
    loop.set_exception_handler(lambda loop, context: errors.append(context))
    with anyio.move_on_after(0.02) as scope:
        await pool.readable(read_end)
    assert scope.cancelled_caught
    assert not loop.remove_reader(read_end)
    os.write(write_end, b"x")
    await anyio.sleep(0.02)
    assert errors == []


@pytest.mark.asyncio
async def test_a_wait_cancelled_as_the_data_arrive_does_not_set_its_future_twice() -> None:
    loop = asyncio.get_running_loop()
    errors: list[dict] = []
    loop.set_exception_handler(lambda loop, context: errors.append(context))
    ready = loop.create_future()
    ready.cancel()
    pool._set_ready(ready)  # the reader's callback after the wait was cancelled
    assert ready.cancelled()
    assert errors == []


@pytest.mark.asyncio
async def test_without_an_asyncio_loop_the_wait_is_anyios(pipe, monkeypatch: pytest.MonkeyPatch) -> None:
    read_end, _ = pipe
    waited: list[int] = []

    async def anyio_wait(fd: int) -> None:
        waited.append(fd)

    def no_asyncio_loop() -> None:
        raise RuntimeError("no running event loop")

    monkeypatch.setattr(pool, "get_running_loop", no_asyncio_loop)
    monkeypatch.setattr(pool.anyio, "wait_readable", anyio_wait)
    await pool.readable(read_end)
    assert waited == [read_end]
