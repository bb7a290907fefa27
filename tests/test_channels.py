"""Go-channel behaviour and the statistics channels keep about themselves."""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from functools import partial

import anyio
import pytest
from anyio import create_task_group, fail_after, wait_all_tasks_blocked

from channels import Channel, ChannelClosed, ChannelStats

# Generous: only reached when a send or receive that must not block does block.
HANG = 5.0


async def send_all(channel: Channel[int], items: range, done: list[int]) -> None:
    for item in items:
        await channel.send(item)
        done.append(item)


async def drain(channel: Channel[int]) -> list[int]:
    return [item async for item in channel]


@pytest.mark.asyncio
async def test_rendezvous_send_waits_until_a_receiver_takes_the_item() -> None:
    channel: Channel[int] = Channel(0, name="rendezvous")
    sent: list[int] = []
    with fail_after(HANG):
        async with create_task_group() as tg:
            tg.start_soon(send_all, channel, range(1), sent)
            await wait_all_tasks_blocked()
            assert sent == []
            assert await channel.receive() == 0
            await wait_all_tasks_blocked()
            assert sent == [0]
    stats = channel.stats()
    assert (stats.sent, stats.received, stats.blocked_sends, stats.blocked_receives) == (1, 1, 1, 0)


@pytest.mark.asyncio
async def test_rendezvous_send_to_a_waiting_receiver_does_not_block() -> None:
    channel: Channel[str] = Channel(0, name="rendezvous")
    got: list[str] = []

    async def receive_one() -> None:
        got.append(await channel.receive())

    with fail_after(HANG):
        async with create_task_group() as tg:
            tg.start_soon(receive_one)
            await wait_all_tasks_blocked()
            await channel.send("x")
    assert got == ["x"]
    stats = channel.stats()
    assert (stats.blocked_sends, stats.blocked_receives, stats.high_water) == (0, 1, 0)


@pytest.mark.asyncio
async def test_buffered_channel_takes_capacity_items_and_blocks_the_next() -> None:
    capacity = 3
    channel: Channel[int] = Channel(capacity, name="data")
    with fail_after(HANG):  # no receiver exists: any blocking send would hang here
        for item in range(capacity):
            await channel.send(item)
    assert len(channel) == capacity

    sent: list[int] = []
    with fail_after(HANG):
        async with create_task_group() as tg:
            tg.start_soon(send_all, channel, range(capacity, capacity + 1), sent)
            await wait_all_tasks_blocked()
            assert sent == []
            assert len(channel) == capacity
            assert await channel.receive() == 0
            await wait_all_tasks_blocked()
            assert sent == [capacity]
    assert len(channel) == capacity
    assert channel.stats().blocked_sends == 1


@pytest.mark.asyncio
async def test_close_ends_async_for_after_the_buffer_is_drained() -> None:
    channel: Channel[int] = Channel(5, name="data")
    for item in range(3):
        await channel.send(item)
    channel.close()
    assert channel.closed
    with fail_after(HANG):
        assert await drain(channel) == [0, 1, 2]
        assert await drain(channel) == []


@pytest.mark.asyncio
async def test_send_after_close_raises_and_names_the_channel() -> None:
    channel: Channel[int] = Channel(1, name="output")
    channel.close()
    with pytest.raises(ChannelClosed, match="send on closed channel 'output'") as caught:
        await channel.send(1)
    assert caught.value.channel == "output"
    assert len(channel) == 0
    assert channel.stats().sent == 0


@pytest.mark.asyncio
async def test_receive_on_closed_and_drained_channel_raises_every_time() -> None:
    channel: Channel[int] = Channel(1, name="data")
    await channel.send(7)
    channel.close()
    assert await channel.receive() == 7
    for _ in range(2):
        with pytest.raises(ChannelClosed, match="closed and drained channel 'data'"):
            await channel.receive()


@pytest.mark.asyncio
async def test_close_wakes_every_receiver_waiting_on_an_empty_channel() -> None:
    channel: Channel[int] = Channel(0, name="data")
    finished: list[list[int]] = []

    async def worker() -> None:
        finished.append(await drain(channel))

    with fail_after(HANG):
        async with create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(worker)
            await wait_all_tasks_blocked()
            assert finished == []
            channel.close()
    assert finished == [[], [], []]
    assert channel.stats().blocked_receives == 3


@pytest.mark.asyncio
async def test_close_fails_a_sender_waiting_on_a_full_channel() -> None:
    channel: Channel[int] = Channel(0, name="data")
    errors: list[ChannelClosed] = []

    async def sender() -> None:
        try:
            await channel.send(1)
        except ChannelClosed as error:
            errors.append(error)

    with fail_after(HANG):
        async with create_task_group() as tg:
            tg.start_soon(sender)
            await wait_all_tasks_blocked()
            channel.close()
    assert [error.channel for error in errors] == ["data"]
    with pytest.raises(ChannelClosed):
        await channel.receive()
    stats = channel.stats()
    assert (stats.sent, stats.received, stats.blocked_sends) == (0, 0, 1)


@pytest.mark.asyncio
async def test_unbounded_channel_never_blocks_a_send() -> None:
    channel: Channel[int] = Channel(math.inf, name="log")
    count = 1000
    with fail_after(HANG):  # no receiver exists: any blocking send would hang here
        for item in range(count):
            await channel.send(item)
    assert len(channel) == count
    stats = channel.stats()
    assert (stats.sent, stats.blocked_sends, stats.high_water) == (count, 0, count)


@pytest.mark.asyncio
async def test_fast_producer_blocks_once_per_item_beyond_capacity() -> None:
    capacity, count = 2, 7
    channel: Channel[int] = Channel(capacity, name="data")
    sent: list[int] = []
    with fail_after(HANG):
        async with create_task_group() as tg:
            tg.start_soon(send_all, channel, range(count), sent)
            for expected in range(count):
                await wait_all_tasks_blocked()  # the producer fills the buffer first
                assert await channel.receive() == expected
    stats = channel.stats()
    assert sent == list(range(count))
    assert (stats.sent, stats.received) == (count, count)
    assert stats.blocked_sends == count - capacity
    assert stats.blocked_receives == 0
    assert stats.receive_blocked_seconds == 0.0
    assert stats.high_water == capacity


@pytest.mark.asyncio
async def test_fast_consumer_blocks_on_every_receive_and_once_more_for_the_close() -> None:
    channel: Channel[int] = Channel(2, name="data")
    count = 5
    received: list[list[int]] = []

    async def consumer() -> None:
        received.append(await drain(channel))

    with fail_after(HANG):
        async with create_task_group() as tg:
            tg.start_soon(consumer)
            for item in range(count):
                await wait_all_tasks_blocked()  # the consumer waits on an empty channel
                await channel.send(item)
            await wait_all_tasks_blocked()
            channel.close()
    assert received == [list(range(count))]
    stats = channel.stats()
    assert (stats.blocked_sends, stats.blocked_receives) == (0, count + 1)
    assert stats.send_blocked_seconds == 0.0
    assert stats.high_water == 0  # each item went straight to the waiting consumer


@pytest.mark.asyncio
async def test_blocked_time_covers_the_wait_of_a_blocked_send() -> None:
    channel: Channel[int] = Channel(0, name="data")
    delay = 0.05
    with fail_after(HANG):
        async with create_task_group() as tg:
            tg.start_soon(send_all, channel, range(1), [])
            await wait_all_tasks_blocked()
            await anyio.sleep(delay)
            await channel.receive()
    stats = channel.stats()
    assert delay <= stats.send_blocked_seconds < HANG
    assert stats.receive_blocked_seconds == 0.0


@pytest.mark.asyncio
async def test_high_water_mark_is_the_fullest_the_buffer_has_been() -> None:
    channel: Channel[int] = Channel(10, name="data")
    for item in range(4):
        await channel.send(item)
    await channel.receive()
    await channel.receive()
    await channel.send(4)
    assert len(channel) == 3
    assert channel.stats().high_water == 4


@pytest.mark.asyncio
async def test_reset_stats_zeroes_counts_and_restarts_high_water_at_the_buffer() -> None:
    channel: Channel[int] = Channel(0, name="data")
    with fail_after(HANG):
        async with create_task_group() as tg:
            tg.start_soon(send_all, channel, range(1), [])
            await wait_all_tasks_blocked()
            await channel.receive()
    buffered: Channel[int] = Channel(5, name="buffered")
    for item in range(3):
        await buffered.send(item)
    await buffered.receive()

    channel.reset_stats()
    buffered.reset_stats()

    assert channel.stats() == ChannelStats(
        name="data",
        capacity=0,
        sent=0,
        received=0,
        blocked_sends=0,
        blocked_receives=0,
        send_blocked_seconds=0.0,
        receive_blocked_seconds=0.0,
        high_water=0,
    )
    assert buffered.stats().high_water == 2


@pytest.mark.asyncio
async def test_many_workers_sharing_channels_see_every_item_exactly_once() -> None:
    count, workers = 500, 8
    data: Channel[int] = Channel(4, name="data")
    output: Channel[tuple[int, int]] = Channel(0, name="output")

    async def produce() -> None:
        for item in range(count):
            await data.send(item)
        data.close()

    async def work(worker: int) -> None:
        async for item in data:
            await output.send((worker, item))

    async def run_workers() -> None:
        async with create_task_group() as pool:
            for worker in range(workers):
                pool.start_soon(work, worker)
        output.close()

    with fail_after(HANG):
        async with create_task_group() as tg:
            tg.start_soon(produce)
            tg.start_soon(run_workers)
            results = [result async for result in output]

    assert sorted(item for _, item in results) == list(range(count))
    assert {worker for worker, _ in results} == set(range(workers))
    for channel in (data, output):
        stats = channel.stats()
        assert (stats.sent, stats.received) == (count, count)


@pytest.mark.asyncio
async def test_cancelled_blocked_send_delivers_nothing_and_leaves_channel_usable() -> None:
    channel: Channel[str] = Channel(1, name="data")
    await channel.send("kept")
    with fail_after(HANG):
        async with create_task_group() as tg:
            tg.start_soon(channel.send, "cancelled")
            await wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
    stats = channel.stats()
    assert (stats.sent, stats.blocked_sends, len(channel)) == (1, 1, 1)

    with fail_after(HANG):  # a later send must not block behind the cancelled one
        assert await channel.receive() == "kept"
        await channel.send("next")
        assert await channel.receive() == "next"
    stats = channel.stats()
    assert (stats.sent, stats.received, stats.blocked_sends) == (2, 2, 1)


@pytest.mark.asyncio
async def test_cancelled_blocked_receive_takes_nothing_and_leaves_channel_usable() -> None:
    channel: Channel[str] = Channel(0, name="data")
    with fail_after(HANG):
        async with create_task_group() as tg:
            tg.start_soon(channel.receive)
            await wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
    got: list[str] = []

    async def receive_one() -> None:
        got.append(await channel.receive())

    with fail_after(HANG):
        async with create_task_group() as tg:
            tg.start_soon(receive_one)
            await wait_all_tasks_blocked()
            await channel.send("x")
    assert got == ["x"]
    stats = channel.stats()
    assert (stats.sent, stats.received, stats.blocked_receives) == (1, 1, 2)


@pytest.mark.asyncio
async def test_send_in_a_cancelled_scope_delivers_nothing_even_with_room() -> None:
    channel: Channel[int] = Channel(1, name="data")
    with anyio.CancelScope() as scope:
        scope.cancel()
        await channel.send(1)
    assert scope.cancelled_caught
    assert len(channel) == 0
    assert channel.stats().sent == 0


def test_capacity_must_be_a_non_negative_integer_or_infinity() -> None:
    for bad in (-1, 1.5, True, math.nan):
        with pytest.raises(ValueError, match="channel 'data': capacity"):
            Channel(bad, name="data")
    assert Channel(3, name="data").capacity == 3
    assert Channel(math.inf, name="data").capacity == math.inf


def test_stats_as_dict_is_strict_json_with_null_for_unbounded() -> None:
    unbounded = Channel(math.inf, name="log").stats().as_dict()
    assert unbounded["capacity"] is None
    assert json.loads(json.dumps(unbounded, allow_nan=False))["name"] == "log"
    assert Channel(4, name="data").stats().as_dict()["capacity"] == 4


@pytest.mark.asyncio
async def test_reset_during_a_blocked_send_counts_that_send_once_in_the_new_count() -> None:
    channel: Channel[int] = Channel(0, name="data")
    with fail_after(HANG):
        async with create_task_group() as tg:
            tg.start_soon(send_all, channel, range(1), [])
            await wait_all_tasks_blocked()
            channel.reset_stats()
            await channel.receive()
    stats = channel.stats()
    assert (stats.sent, stats.received, stats.blocked_sends) == (1, 1, 1)


async def returns_despite_cancel_at_first_yield(operation: Callable[[], Awaitable[object]]) -> bool:
    """Run ``operation`` in a scope another task cancels as soon as it first yields."""
    scopes: list[anyio.CancelScope] = []
    returned: list[bool] = []

    async def run() -> None:
        with anyio.CancelScope() as scope:
            scopes.append(scope)
            await operation()
            returned.append(True)

    async def cancel() -> None:
        scopes[0].cancel()

    with fail_after(HANG):
        async with create_task_group() as tg:
            tg.start_soon(run)
            tg.start_soon(cancel)
    return returned == [True]


@pytest.mark.asyncio
async def test_a_send_cancelled_at_its_checkpoint_delivers_nothing() -> None:
    channel: Channel[int] = Channel(1, name="data")
    assert not await returns_despite_cancel_at_first_yield(partial(channel.send, 1))
    assert (len(channel), channel.stats().sent) == (0, 0)


@pytest.mark.asyncio
async def test_a_receive_cancelled_at_its_checkpoint_takes_nothing() -> None:
    channel: Channel[int] = Channel(1, name="data")
    await channel.send(1)
    assert not await returns_despite_cancel_at_first_yield(channel.receive)
    assert (len(channel), channel.stats().received) == (1, 0)
    assert await channel.receive() == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("capacity", [0, 1])
async def test_a_send_that_delivered_returns_before_its_receiver_can_cancel_it(capacity: int) -> None:
    """Nothing is awaited after the hand-over, so a delivered item is never reported as cancelled."""
    channel: Channel[int] = Channel(capacity, name="data")
    scopes: list[anyio.CancelScope] = []
    returned: list[bool] = []

    async def receiver() -> None:
        assert await channel.receive() == 1
        scopes[0].cancel()

    with fail_after(HANG):
        async with create_task_group() as tg:
            tg.start_soon(receiver)
            await wait_all_tasks_blocked()
            with anyio.CancelScope() as scope:
                scopes.append(scope)
                await channel.send(1)
                returned.append(True)
    assert returned == [True]
    assert (channel.stats().sent, channel.stats().received) == (1, 1)


async def lets_another_task_run(operation: Callable[[], Awaitable[object]]) -> bool:
    """Whether a task started just before ``operation`` runs before it returns."""
    ran: list[bool] = []

    async def other_task() -> None:
        ran.append(True)

    async with create_task_group() as tg:
        tg.start_soon(other_task)
        await operation()
        return ran == [True]


@pytest.mark.asyncio
async def test_send_and_receive_let_other_tasks_run_even_when_they_need_not_wait() -> None:
    channel: Channel[int] = Channel(1, name="data")
    assert await lets_another_task_run(partial(channel.send, 1))
    assert await lets_another_task_run(channel.receive)
    stats = channel.stats()
    assert (stats.blocked_sends, stats.blocked_receives) == (0, 0)
