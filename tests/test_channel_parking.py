"""A receive that must wait parks in the channel's own queue; a send hands its item straight over.

What Go's channel (and anyio's stream) guarantee, checked on the channel's own parking:
first come first served, nothing ever buffered while a receiver waits, a cancelled
wait skipped (its item goes to the next receiver or to the buffer), and a wait that was
handed an item completes even if its scope is cancelled before it runs again.
"""

from __future__ import annotations

import math

import anyio
import pytest
from anyio import CancelScope, create_task_group, fail_after, wait_all_tasks_blocked

import channels.channel
from channels import Channel, ChannelClosed

HANG = 5.0


async def _receive_into(channel: Channel[str], got: list[tuple[int, str]], who: int) -> None:
    got.append((who, await channel.receive()))


async def _receive_within(
    scope: CancelScope, channel: Channel[str], got: list[tuple[int, str]], who: int
) -> None:
    with scope:
        await _receive_into(channel, got, who)


@pytest.mark.asyncio
@pytest.mark.parametrize("capacity", [0, 1, 3, math.inf])
async def test_parked_receivers_are_served_in_order_and_nothing_is_buffered(capacity: float) -> None:
    channel: Channel[str] = Channel(capacity, name="data", fast_path=True)
    got: list[tuple[int, str]] = []
    with fail_after(HANG):
        async with create_task_group() as tg:
            for who in range(3):
                tg.start_soon(_receive_into, channel, got, who)
                await wait_all_tasks_blocked()  # receiver `who` parks before the next one starts
            for item in "abc":
                await channel.send(item)  # none of these waits: a receiver is parked for each
            assert len(channel) == 0
    assert got == [(0, "a"), (1, "b"), (2, "c")]
    stats = channel.stats()
    assert (stats.sent, stats.received, stats.blocked_sends, stats.blocked_receives) == (3, 3, 0, 3)
    assert stats.high_water == 0


@pytest.mark.asyncio
async def test_a_cancelled_parked_receive_is_skipped_and_its_item_goes_to_the_next_receiver() -> None:
    channel: Channel[str] = Channel(2, name="data", fast_path=True)
    got: list[tuple[int, str]] = []
    first = CancelScope()
    with fail_after(HANG):
        async with create_task_group() as tg:
            tg.start_soon(_receive_within, first, channel, got, 0)
            await wait_all_tasks_blocked()
            tg.start_soon(_receive_into, channel, got, 1)
            await wait_all_tasks_blocked()
            first.cancel()  # receiver 0's wait is cancelled; it has not run since
            await channel.send("a")
    assert got == [(1, "a")]
    assert first.cancelled_caught
    stats = channel.stats()
    assert (stats.sent, stats.received, stats.high_water) == (1, 1, 0)


@pytest.mark.asyncio
async def test_with_every_parked_receive_cancelled_the_item_waits_in_the_buffer() -> None:
    channel: Channel[str] = Channel(2, name="data", fast_path=True)
    got: list[tuple[int, str]] = []
    scope = CancelScope()
    with fail_after(HANG):
        async with create_task_group() as tg:
            tg.start_soon(_receive_within, scope, channel, got, 0)
            await wait_all_tasks_blocked()
            scope.cancel()
            await channel.send("a")
        assert got == []
        assert len(channel) == 1
        assert await channel.receive() == "a"
    stats = channel.stats()
    assert (stats.sent, stats.received, stats.high_water) == (1, 1, 1)


@pytest.mark.asyncio
async def test_a_receive_handed_an_item_completes_even_if_its_scope_is_cancelled_before_it_runs() -> None:
    channel: Channel[str] = Channel(0, name="data", fast_path=True)
    got: list[tuple[int, str]] = []
    after: list[str] = []
    scope = CancelScope()

    async def receiver() -> None:
        with scope:
            await _receive_into(channel, got, 0)
            after.append("reached")  # no checkpoint between: the cancellation is not delivered yet
            await anyio.lowlevel.checkpoint()
            after.append("not reached")

    with fail_after(HANG):
        async with create_task_group() as tg:
            tg.start_soon(receiver)
            await wait_all_tasks_blocked()
            await channel.send("a")  # handed over: the receive is done, whatever happens next
            scope.cancel()
    assert got == [(0, "a")]
    assert after == ["reached"]
    stats = channel.stats()
    assert (stats.sent, stats.received) == (1, 1)


@pytest.mark.asyncio
async def test_close_ends_every_parked_receive_and_a_send_after_it_reaches_none() -> None:
    channel: Channel[str] = Channel(1, name="data", fast_path=True)
    ended: list[int] = []

    async def receiver(who: int) -> None:
        with pytest.raises(ChannelClosed):
            await channel.receive()
        ended.append(who)

    with fail_after(HANG):
        async with create_task_group() as tg:
            for who in range(3):
                tg.start_soon(receiver, who)
            await wait_all_tasks_blocked()
            channel.close()
        with pytest.raises(ChannelClosed):
            await channel.send("late")
    assert sorted(ended) == [0, 1, 2]
    stats = channel.stats()
    assert (stats.sent, stats.received, stats.blocked_receives) == (0, 0, 3)


@pytest.mark.asyncio
async def test_without_an_asyncio_loop_a_receive_waits_in_the_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another event loop than asyncio's (e.g. Trio) has no futures to park on: anyio's own receive waits."""

    def no_asyncio_loop() -> None:
        raise RuntimeError("no running event loop")

    monkeypatch.setattr(channels.channel, "get_running_loop", no_asyncio_loop)
    channel: Channel[str] = Channel(1, name="data", fast_path=True)
    got: list[tuple[int, str]] = []
    with fail_after(HANG):
        async with create_task_group() as tg:
            tg.start_soon(_receive_into, channel, got, 0)
            await wait_all_tasks_blocked()
            assert not channel._parked  # waiting in the stream, not in the channel's queue
            await channel.send("a")
    assert got == [(0, "a")]
    stats = channel.stats()
    assert (stats.sent, stats.received, stats.blocked_receives, stats.high_water) == (1, 1, 1, 0)


@pytest.mark.asyncio
async def test_a_receive_that_must_wait_while_a_send_is_on_its_way_to_wait_in_the_stream_meets_it() -> None:
    """The send has found nobody parked and is at the stream's own checkpoint, about to park there.

    A receive parked in the channel's queue then would never meet it (the stream's send
    sees only receives parked in the stream): both would wait forever.  Made to happen:
    the receive yields at its checkpoint (the channel's run of turns without a yield is
    used up), the send does not.
    """
    channel: Channel[str] = Channel(0, name="rendezvous", fast_path=True)
    channel._turns_without_yield = channels.channel.FAST_PATH_TURNS
    got: list[tuple[int, str]] = []
    with fail_after(HANG):
        async with create_task_group() as tg:
            tg.start_soon(_receive_into, channel, got, 0)
            tg.start_soon(channel.send, "a")
    assert got == [(0, "a")]
    stats = channel.stats()
    assert (stats.sent, stats.received, stats.blocked_sends) == (1, 1, 1)


@pytest.mark.asyncio
async def test_receives_cancelled_while_parked_leave_nothing_parked() -> None:
    channel: Channel[str] = Channel(1, name="data", fast_path=True)
    got: list[tuple[int, str]] = []
    for _ in range(50):
        scope = CancelScope()
        with fail_after(HANG):
            async with create_task_group() as tg:
                tg.start_soon(_receive_within, scope, channel, got, 0)
                await wait_all_tasks_blocked()
                assert len(channel._parked) == 1  # the receive is parked, not at a checkpoint
                scope.cancel()
    assert not channel._parked  # each cancelled wait took itself out of the queue
    await channel.send("a")  # and the next send finds nobody parked: it buffers
    assert len(channel) == 1
    stats = channel.stats()
    assert (stats.sent, stats.received, stats.blocked_receives, stats.high_water) == (1, 0, 50, 1)


@pytest.mark.asyncio
@pytest.mark.parametrize("capacity", [0, 1, math.inf])
async def test_a_receiver_waits_exactly_while_a_receive_is_parked_and_not_cancelled(capacity: float) -> None:
    channel: Channel[str] = Channel(capacity, name="data", fast_path=True)
    got: list[tuple[int, str]] = []
    assert not channel.receiver_waiting
    with fail_after(HANG):
        async with create_task_group() as tg:
            tg.start_soon(_receive_into, channel, got, 0)
            await wait_all_tasks_blocked()
            assert channel.receiver_waiting and len(channel) == 0
            await channel.send("a")  # handed over: nobody waits now, though the receiver has not run yet
            assert not channel.receiver_waiting
            scope = CancelScope()
            tg.start_soon(_receive_within, scope, channel, got, 1)
            await wait_all_tasks_blocked()
            assert channel.receiver_waiting
            scope.cancel()  # the wait is cancelled at once, before its task runs again
            assert not channel.receiver_waiting
    assert got == [(0, "a")]
    assert not channel.receiver_waiting
