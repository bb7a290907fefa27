"""Go's channel, on an anyio memory object stream: send, receive, close, range, len, cap.

A ``Channel`` keeps one send end and one receive end of the stream and shares them
among all its users, so any number of tasks may send into it and receive from it at
once — the workers of a pass all receive from one data channel and all send into one
output channel.  The sender closes; receivers drain what is buffered and then find the
channel finished.

Every send and receive first tries the stream's ``*_nowait`` call; only when that
would block does it fall back to the awaiting call, and only that wait is counted
and timed, so the statistics say exactly how often and how long the pipeline
stalled.  Nothing is awaited after an item has changed hands without waiting, which
is what keeps an operation from being both done and cancelled.

Whether an operation that need not wait lets other tasks run is the channel's
choice, made when it is created:

- by default (anyio's and Trio's rule) every operation is a checkpoint — other
  tasks run and a cancellation takes effect — before anything changes hands;
- with ``fast_path=True`` (Go's rule, and ``asyncio.Queue``'s) an operation that can
  complete at once completes without yielding and without looking for a
  cancellation, as ``asyncio.Queue``'s ``put`` into room and ``get`` of a waiting item
  do: other tasks run, and a cancellation takes effect, only when the operation
  must wait — or once every ``FAST_PATH_TURNS`` operations of the channel in a row
  that did not, so that a loop of them (a producer filling an unbounded channel)
  can neither starve the event loop nor outlive its cancellation for long.  A
  cancellation requested before such an operation takes effect at the task's next
  wait instead; an operation still completes or is cancelled, never both.  A yield
  costs several microseconds and a task switch, and anyio's look for a cancellation
  alone about 3 µs (``checkpoint_if_cancelled``: the running loop and task, a weak
  dictionary of task states, the scopes); the pass' actors wait on every round
  anyway (a worker for its slice and its step, the coordinator for the reports), so
  the pass' channels take the fast path.  Go gives no more: its channel operations
  are scheduling points only when they block, and have no cancellation.

A receive that must wait parks on a future of the running asyncio loop, in the
channel's own queue of waiting receives, and the next send hands its item straight to
the first of them whose wait was not cancelled, as Go's channel (and anyio's stream)
does: the item never touches the buffer.  anyio's stream parks a receive itself, but
yields once more before it parks and builds an event and a record of the waiting task
each time: a round trip of two such hand-overs costs 212,000 instructions through the
bare streams, 132,000 through this channel and 53,000 through an ``asyncio.Queue``
(``python -m actors.study.handover``), and a round of the pass makes four.  The buffer,
a send that waits on a full buffer and the close stay the stream's; a receive waits in
the stream under an event loop other than asyncio's, and while a send is on its way to
wait in the stream (only a receive waiting there can meet it).

Cancellation, for every awaiting method: under anyio's cancel scopes (task groups,
``move_on_after``, ``fail_after``) an operation either completes or is cancelled, never
both — a cancelled send did not deliver its item, a cancelled receive took none — with
one exception, anyio's: its streams check a waiting receiver for a pending
cancellation before handing it an item, but not a waiting sender before taking its
item, so a send waiting on a full channel that is cancelled while a receiver is at its
checkpoint may raise although its item was taken.  (A receive therefore yields before
it takes an item from a waiting sender, even on the fast path: a sender cancelled
before that withdraws its item first.)  A bare ``asyncio.Task.cancel()`` can arrive
after the other side already took part in the hand-over; that race is asyncio's.  In
both cases the statistics count the item on one side only.
"""

from __future__ import annotations

import contextlib
import math
import weakref
from asyncio import Future, get_running_loop
from collections import deque
from typing import Generic, TypeVar

import anyio
from anyio import ClosedResourceError, EndOfStream, WouldBlock
from anyio.lowlevel import checkpoint
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from channels.stats import ChannelStats, Interval, Tally

T = TypeVar("T")

# With fast_path, at most this many operations of a channel in a row complete without yielding.
FAST_PATH_TURNS = 64


class ChannelClosed(Exception):
    """A send on a closed channel, or a receive on a closed and drained one.

    ``channel`` is the name of the channel.  From a receive it is the normal end of the
    stream (``async for`` turns it into the end of the loop); from a send it means the
    pipeline's protocol is broken — someone closed a channel that was still in use,
    which in Go is a panic.
    """

    def __init__(self, message: str, *, channel: str) -> None:
        super().__init__(message)
        self.channel = channel


class Channel(Generic[T]):
    """A Go channel of capacity 0 (rendezvous), n (buffered) or ``math.inf`` (unbounded).

    With capacity 0 a send completes only when a receiver takes the item; with capacity
    n up to n items wait in the buffer and the next send blocks until one is taken; an
    unbounded channel never blocks a send.  ``len(ch)`` is the number of items in the
    buffer, ``ch.capacity`` its size, ``ch.stats()`` a snapshot of what the channel
    counted since it was made or since ``reset_stats()``.

    With ``timeline``, it also keeps when each blocked operation waited, and who waited
    (``blocked_intervals()``).

    ``fast_path``: an operation that can complete at once does so without letting
    other tasks run first (see the module's docstring); by default every operation
    is a checkpoint.

    Raises ``ValueError`` if ``capacity`` is not a non-negative integer or ``math.inf``.
    """

    def __init__(
        self, capacity: float = 0, *, name: str, timeline: bool = False, fast_path: bool = False
    ) -> None:
        if not _is_capacity(capacity):
            raise ValueError(
                f"channel {name!r}: capacity must be a non-negative integer or math.inf, not {capacity!r}"
            )
        self._name = name
        self._capacity = capacity
        self._send_stream, self._receive_stream = anyio.create_memory_object_stream[T](capacity)
        self._tally = Tally()
        if timeline:
            self._tally.keep_intervals()
        self._closed = False
        self._fast_path = fast_path
        self._turns_without_yield = 0
        self._senders_waiting = 0  # sends in the stream's awaiting call, or about to be
        # Receives parked on the loop's futures, first come first served; a send hands its item to the
        # first whose wait was not cancelled.  Never non-empty while the buffer holds an item.
        self._parked: deque[Future[T]] = deque()
        # A Go channel holds nothing but memory and need not be closed, but anyio warns
        # about a stream collected open; nobody can use the ends once the channel is gone.
        weakref.finalize(self, _close_ends, self._send_stream, self._receive_stream)

    @property
    def name(self) -> str:
        """The name used in error messages and logs."""
        return self._name

    @property
    def capacity(self) -> float:
        """How many items the buffer holds: 0, a positive integer or ``math.inf``."""
        return self._capacity

    @property
    def closed(self) -> bool:
        """Whether ``close()`` has been called; buffered items may still be received."""
        return self._closed

    def __len__(self) -> int:
        """The number of items waiting in the buffer (always 0 for a rendezvous)."""
        return self._send_stream.statistics().current_buffer_used

    def __repr__(self) -> str:
        return (
            f"Channel(name={self._name!r}, capacity={self._capacity},"
            f" buffered={len(self)}, closed={self.closed})"
        )

    async def send(self, item: T) -> None:
        """Put ``item`` into the channel, waiting while it is full (``ch <- item``).

        On a rendezvous channel this waits until a receiver takes the item.  A
        checkpoint (with ``fast_path``, only when it waits: see the module's text).  On cancellation the item
        was not sent and the channel is unchanged; a send that blocked before being
        cancelled still counts as a blocked send.

        Raises ``ChannelClosed`` if the channel is closed, including when it is closed
        while this send is waiting; the item is then not delivered.
        """
        if self._must_yield(receiving=False):  # before anything is delivered: a cancellation here
            await checkpoint()  # leaves the channel as it was
        if self._parked and not self._closed and self._hand_over(item):
            self._tally.record_sent(0)  # straight to a waiting receiver, as Go does: nothing buffered
            return
        try:
            try:
                self._send_stream.send_nowait(item)
            except WouldBlock:
                self._turns_without_yield = 0  # the stream's send yields before it waits
                self._senders_waiting += 1
                try:
                    with self._tally.sends.timing():
                        await self._send_stream.send(item)
                finally:
                    self._senders_waiting -= 1
        except ClosedResourceError:
            raise self._closed_error("send on closed channel") from None
        self._tally.record_sent(len(self))

    async def receive(self) -> T:
        """Take the next item, waiting while the channel is empty (``<-ch``).

        Items come out in the order they went in.  A checkpoint (with ``fast_path``,
        only when it waits: see the module's text).  On cancellation no item was taken and the channel is
        unchanged; a receive that blocked before being cancelled still counts as a
        blocked receive.

        Raises ``ChannelClosed`` once the channel is closed and drained, including when
        it is closed while this receive is waiting on an empty buffer.
        """
        if self._must_yield(receiving=True):
            await checkpoint()
        try:
            try:
                item = self._receive_stream.receive_nowait()
            except WouldBlock:
                self._turns_without_yield = 0
                with self._tally.receives.timing():
                    item = await self._wait_for_item()
        except EndOfStream:
            raise self._closed_error("receive on closed and drained channel") from None
        self._tally.record_received()
        return item

    def close(self) -> None:
        """Close the channel: no more sends; receivers drain the buffer, then stop.

        Called by the sending side, as in Go.  Wakes every receiver waiting on an empty
        channel (they get ``ChannelClosed``; an ``async for`` ends) and every sender
        waiting on a full one (they get ``ChannelClosed``; their items are dropped).
        Closing an already closed channel does nothing.  Never blocks, never raises.
        """
        self._closed = True
        self._send_stream.close()
        while self._parked:  # only while the buffer is empty: closed and drained
            waiting = self._parked.popleft()
            if not waiting.done():
                waiting.set_exception(EndOfStream())

    @property
    def receiver_waiting(self) -> bool:
        """Whether a receive waits on this channel now (parked on the channel's own queue, under
        asyncio, and not cancelled).  While one does, the channel holds no item, no send waits,
        and a receive made now waits in line behind it."""
        return any(not waiting.done() for waiting in self._parked)

    def __aiter__(self) -> Channel[T]:
        return self

    async def __anext__(self) -> T:
        """The next item of ``async for x in ch`` (Go's ``range``).

        The loop ends when the channel is closed and drained.  Cancellation and errors
        as for ``receive``.
        """
        try:
            return await self.receive()
        except ChannelClosed:
            raise StopAsyncIteration from None

    def stats(self) -> ChannelStats:
        """A frozen snapshot of the statistics; cheap, never blocks, never raises."""
        return self._tally.snapshot(self._name, self._capacity)

    def blocked_intervals(self) -> tuple[tuple[Interval, ...], tuple[Interval, ...]]:
        """Every blocked send and every blocked receive, as ``(party, began, ended)``.

        Times are ``time.monotonic_ns``; ``party`` is ``channels.stats.party`` in the
        task that blocked.  Empty unless the channel was made with ``timeline=True``.
        """
        return tuple(self._tally.sends.intervals or ()), tuple(self._tally.receives.intervals or ())

    def reset_stats(self) -> None:
        """Start counting afresh, e.g. for a new pass over the data.

        All counts and times go to zero; the high-water mark restarts at the number of
        items buffered now, since they are in the buffer at the start of the new count.
        Meant for the quiet moment between passes; a send or receive waiting right now
        is counted, with its whole wait, in the new count when it completes.
        """
        self._tally.reset(buffered=len(self))

    def _hand_over(self, item: T) -> bool:
        """Give ``item`` to the first parked receive whose wait was not cancelled; whether one was."""
        while self._parked:
            waiting = self._parked.popleft()
            if not waiting.done():  # a cancelled wait is done already
                waiting.set_result(item)
                return True
        return False

    async def _wait_for_item(self) -> T:
        """Wait for the next item on an empty channel (``receive_nowait`` has just said so).

        On asyncio, park on a future of the loop until a send hands an item over (or the
        close ends the wait with ``EndOfStream``).  Once a send has set the future, the
        receive completes: anyio's cancel scopes do not cancel a task whose awaited
        future is done.  Elsewhere, and while a send is on its way to wait in the
        stream, the stream's own receive.
        """
        try:
            loop = get_running_loop()
        except RuntimeError:  # not asyncio: anyio parks the receive itself
            loop = None
        # While a send is between its checkpoint and parking in the stream, only a receive parked in
        # the stream can meet it: a receive parked here would wait for it forever.
        if loop is None or self._senders_waiting:
            return await self._receive_stream.receive()
        waiting: Future[T] = loop.create_future()
        self._parked.append(waiting)
        try:
            return await waiting
        finally:
            if not waiting.done() or waiting.cancelled():
                with contextlib.suppress(ValueError):  # a send or the close took it out already
                    self._parked.remove(waiting)

    def _must_yield(self, *, receiving: bool) -> bool:
        """Whether an operation begins with a checkpoint (other tasks run, a cancellation takes
        effect): always, unless on the fast path and within ``FAST_PATH_TURNS`` of the last yield."""
        if (
            self._fast_path
            and self._turns_without_yield < FAST_PATH_TURNS
            and not (receiving and self._senders_waiting)
        ):
            self._turns_without_yield += 1
            return False
        self._turns_without_yield = 0
        return True

    def _closed_error(self, what: str) -> ChannelClosed:
        return ChannelClosed(f"{what} {self._name!r}", channel=self._name)


def _is_capacity(capacity: object) -> bool:
    if capacity == math.inf:
        return True
    return isinstance(capacity, int) and not isinstance(capacity, bool) and capacity >= 0


def _close_ends(send: MemoryObjectSendStream[object], receive: MemoryObjectReceiveStream[object]) -> None:
    send.close()
    receive.close()
