"""A channel made with ``fast_path=True``: Go's rule for when an operation lets other tasks run.

An operation that can complete at once neither yields nor looks for a cancellation
(``asyncio.Queue``'s rule): a cancellation takes effect at the task's next wait; a loop
of such operations still lets other tasks run, and a cancellation take effect, every
``FAST_PATH_TURNS`` operations; and the guarantees of every channel hold: delivered or
cancelled, never both; first in, first out; exact statistics.
"""

from __future__ import annotations

import math
import random
from functools import partial

import anyio
import pytest
from anyio import create_task_group, fail_after, wait_all_tasks_blocked
from test_channels import lets_another_task_run

from channels import Channel, ChannelClosed
from channels.channel import FAST_PATH_TURNS

HANG = 5.0


@pytest.mark.asyncio
async def test_send_and_receive_that_need_not_wait_do_not_let_other_tasks_run() -> None:
    channel: Channel[int] = Channel(1, name="data", fast_path=True)
    assert not await lets_another_task_run(partial(channel.send, 1))
    assert not await lets_another_task_run(channel.receive)
    stats = channel.stats()
    assert (stats.sent, stats.received, stats.blocked_sends, stats.blocked_receives) == (1, 1, 0, 0)
    assert stats.high_water == 1


@pytest.mark.asyncio
async def test_a_receive_that_must_wait_lets_other_tasks_run_and_counts_as_blocked() -> None:
    channel: Channel[str] = Channel(0, name="rendezvous", fast_path=True)
    with fail_after(HANG):
        async with create_task_group() as tg:
            tg.start_soon(channel.send, "x")  # runs only if the receive yields
            assert await channel.receive() == "x"
    stats = channel.stats()
    assert (stats.received, stats.blocked_receives) == (1, 1)


@pytest.mark.asyncio
async def test_on_a_default_channel_an_operation_in_a_cancelled_scope_changes_nothing() -> None:
    """Even when it need not wait: anyio's rule, every operation a checkpoint."""
    channel: Channel[int] = Channel(1, name="data")
    await channel.send(1)
    with anyio.CancelScope() as receiving:
        receiving.cancel()
        await channel.receive()  # an item is waiting
    assert receiving.cancelled_caught
    assert (len(channel), channel.stats().received) == (1, 0)
    assert await channel.receive() == 1
    with anyio.CancelScope() as sending:
        sending.cancel()
        await channel.send(2)  # there is room
    assert sending.cancelled_caught
    assert (len(channel), channel.stats().sent) == (0, 1)


@pytest.mark.asyncio
async def test_on_the_fast_path_an_operation_that_need_not_wait_completes_the_next_wait_is_cancelled() -> (
    None
):
    """asyncio.Queue's rule (and Go's): no look for a cancellation when nothing has to wait."""
    channel: Channel[int] = Channel(1, name="data", fast_path=True)
    await channel.send(1)
    taken = []
    with anyio.CancelScope() as receiving:
        receiving.cancel()
        taken.append(await channel.receive())  # an item is waiting: taken, not cancelled
        taken.append(await channel.receive())  # nothing is: this wait is cancelled
    assert receiving.cancelled_caught and taken == [1]
    assert (len(channel), channel.stats().received) == (0, 1)
    with anyio.CancelScope() as sending:
        sending.cancel()
        await channel.send(2)  # there is room: delivered
        await channel.send(3)  # there is none: this wait is cancelled, 3 is not delivered
    assert sending.cancelled_caught
    assert (len(channel), channel.stats().sent) == (1, 2)
    assert await channel.receive() == 2


@pytest.mark.asyncio
async def test_a_receive_yields_before_taking_from_a_waiting_sender_so_a_cancelled_one_withdraws() -> None:
    channel: Channel[int] = Channel(0, name="rendezvous", fast_path=True)
    returned: list[bool] = []
    scope = anyio.CancelScope()

    async def sender() -> None:
        with scope:
            await channel.send(1)
            returned.append(True)

    async with create_task_group() as tg:
        tg.start_soon(sender)
        await wait_all_tasks_blocked()
        scope.cancel()  # the sender is cancelled, but has not run since: its item is still offered
        with anyio.move_on_after(0.1) as waited:
            await channel.receive()
    assert waited.cancelled_caught  # nothing to take: the cancelled send withdrew its item
    assert (returned, scope.cancelled_caught) == ([], True)
    stats = channel.stats()
    assert (stats.sent, stats.received) == (0, 0)


@pytest.mark.asyncio
async def test_a_task_that_never_has_to_wait_lets_others_run_every_fast_path_turns_operations() -> None:
    channel: Channel[int] = Channel(math.inf, name="log", fast_path=True)
    sent = 0
    ran_after: list[int] = []

    async def other_task() -> None:
        ran_after.append(sent)

    async with create_task_group() as tg:
        tg.start_soon(other_task)
        for _ in range(3 * FAST_PATH_TURNS):
            await channel.send(sent)
            sent += 1
    assert ran_after == [FAST_PATH_TURNS]


@pytest.mark.asyncio
async def test_a_sender_that_never_has_to_wait_can_be_cancelled_by_another_task() -> None:
    channel: Channel[int] = Channel(math.inf, name="log", fast_path=True)
    limit = 100 * FAST_PATH_TURNS  # reached only if the other task never gets to run
    delivered = 0

    async def sender(scope: anyio.CancelScope) -> None:
        nonlocal delivered
        with scope:
            while delivered < limit:
                await channel.send(delivered)
                delivered += 1

    with fail_after(HANG):
        async with create_task_group() as tg:
            scope = anyio.CancelScope()
            tg.start_soon(sender, scope)
            await anyio.lowlevel.checkpoint()  # back here only when the sender yields
            scope.cancel()
    assert delivered == FAST_PATH_TURNS
    assert scope.cancelled_caught
    assert (channel.stats().sent, len(channel)) == (delivered, delivered)
    assert [await channel.receive() for _ in range(delivered)] == list(range(delivered))


@pytest.mark.asyncio
@pytest.mark.parametrize("fast_path", [False, True])
@pytest.mark.parametrize("capacity", [0, 1, 3, math.inf])
async def test_receives_cancelled_at_random_take_nothing_so_every_item_arrives_once_in_order(
    capacity: float, fast_path: bool
) -> None:
    """Three senders and a receiver whose every receive is in a scope a third task may cancel at any yield."""
    channel: Channel[tuple[int, int]] = Channel(capacity, name="data", fast_path=fast_path)
    chaos = random.Random(f"{capacity}-{fast_path}")
    count, senders = 300, 3
    live: list[anyio.CancelScope] = []
    received: list[tuple[int, int]] = []
    cancelled = 0
    senders_left = senders

    async def sender(who: int) -> None:
        nonlocal senders_left
        for number in range(count):
            await channel.send((who, number))
        senders_left -= 1
        if not senders_left:
            channel.close()

    async def receiver() -> None:
        nonlocal cancelled
        while True:
            with anyio.CancelScope() as scope:
                live.append(scope)
                try:
                    received.append(await channel.receive())
                except ChannelClosed:
                    return
                finally:
                    live.remove(scope)
            cancelled += scope.cancelled_caught

    async def canceller() -> None:
        while senders_left:
            await anyio.lowlevel.checkpoint()
            if live and chaos.random() < 0.5:
                live[0].cancel()

    with fail_after(HANG):
        async with create_task_group() as tg:
            for who in range(senders):
                tg.start_soon(sender, who)
            tg.start_soon(receiver)
            tg.start_soon(canceller)

    assert cancelled  # the test did cancel receives
    for who in range(senders):  # nothing lost, nothing twice, first in first out
        assert [number for sender_, number in received if sender_ == who] == list(range(count))
    stats = channel.stats()
    assert (stats.sent, stats.received) == (senders * count, senders * count)
