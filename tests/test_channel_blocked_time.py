"""A channel's blocked time is the sum of every blocked operation's wait, not the last one's.

Each side below blocks six times for about ``DELAY``; the test times each call itself.
A call's own time holds its wait plus a checkpoint and a try that would block (a few
microseconds), so the channel's total must be within a fraction of one wait of the
calls' sum — while the last wait alone would miss it by five waits.
"""

from __future__ import annotations

import contextlib
import time

import anyio
import pytest
from anyio import create_task_group, fail_after

from channels import Channel, ChannelClosed

DELAY = 0.02
ITEMS = 5
HANG = 5.0


async def timed(call) -> float:
    began = time.perf_counter()
    await call()
    return time.perf_counter() - began


@pytest.mark.asyncio
async def test_receive_blocked_seconds_add_up_over_every_blocked_receive() -> None:
    channel: Channel[int] = Channel(2, name="data")
    waits: list[float] = []

    async def slow_producer() -> None:
        for item in range(ITEMS):
            await anyio.sleep(DELAY)
            await channel.send(item)
        await anyio.sleep(DELAY)
        channel.close()

    async def receive_until_closed() -> None:
        with contextlib.suppress(ChannelClosed):  # the last wait ends with the close
            await channel.receive()

    async def consumer() -> None:
        for _ in range(ITEMS + 1):
            waits.append(await timed(receive_until_closed))

    with fail_after(HANG):
        async with create_task_group() as group:
            group.start_soon(consumer)
            group.start_soon(slow_producer)
    stats = channel.stats()
    assert (stats.received, stats.blocked_receives) == (ITEMS, ITEMS + 1)
    assert min(waits) >= DELAY / 2  # every receive really blocked
    assert sum(waits) - DELAY / 2 < stats.receive_blocked_seconds <= sum(waits)
    assert stats.send_blocked_seconds == 0.0


@pytest.mark.asyncio
async def test_send_blocked_seconds_add_up_over_every_blocked_send() -> None:
    channel: Channel[int] = Channel(0, name="output")
    waits: list[float] = []

    async def producer() -> None:
        for item in range(ITEMS + 1):
            waits.append(await timed(lambda item=item: channel.send(item)))

    async def slow_consumer() -> None:
        for _ in range(ITEMS + 1):
            await anyio.sleep(DELAY)
            await channel.receive()

    with fail_after(HANG):
        async with create_task_group() as group:
            group.start_soon(producer)
            group.start_soon(slow_consumer)
    stats = channel.stats()
    assert stats.blocked_sends == ITEMS + 1
    assert min(waits) >= DELAY / 2
    assert sum(waits) - DELAY / 2 < stats.send_blocked_seconds <= sum(waits)
    assert stats.receive_blocked_seconds == 0.0
