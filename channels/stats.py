"""What a channel counts about itself: the blocking the thesis measures.

``ChannelStats`` is the frozen snapshot a caller reads and logs; ``Tally`` (with one
``Blocking`` per side) is the mutable record a ``Channel`` keeps and turns into one.
Blocked time is wall time (``time.monotonic_ns``) from the moment an operation found
the channel full (or empty) until it returned, was cancelled or failed.  A channel
made with ``timeline=True`` also keeps every blocked interval, with the name of the
party that blocked (``party``, set by whoever uses the channel), for timelines.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from time import monotonic_ns

# Who is sending or receiving in the current task ("coordinator", "worker 0", …): recorded
# with each blocked interval.  A context variable, so each task of a task group has its own.
party: ContextVar[str] = ContextVar("party", default="")


@contextmanager
def acting_as(name: str) -> Iterator[None]:
    """Inside the block, this task's blocked channel operations are recorded as ``name``'s."""
    token = party.set(name)
    try:
        yield
    finally:
        party.reset(token)


# A blocked operation: (party, began, ended), both on time.monotonic_ns, which every
# process of the machine shares.
Interval = tuple[str, int, int]


@dataclass(frozen=True)
class ChannelStats:
    """A snapshot of one channel's statistics since it was made or last reset.

    ``blocked_sends`` counts sends that found the channel full — for a rendezvous
    channel (capacity 0) every send that found no receiver already waiting — and so had
    to wait; ``blocked_receives`` counts receives that found it empty.  A blocked
    operation counts even if it was then cancelled or failed, which is why
    ``blocked_sends`` may exceed ``sent``.  A receiver ranging over a channel waits once
    more at the end for the close, and that wait counts too.  ``high_water`` is the
    largest number of items that sat in the buffer at once; an item handed straight to
    a waiting receiver never enters the buffer, so it is always 0 for a rendezvous
    channel.  Each count is added when its call returns: a snapshot taken during a
    hand-over may show ``received`` one ahead of ``sent``.
    """

    name: str
    capacity: float
    sent: int
    received: int
    blocked_sends: int
    blocked_receives: int
    send_blocked_seconds: float
    receive_blocked_seconds: float
    high_water: int

    def as_dict(self) -> dict[str, str | int | float | None]:
        """The fields as a JSON-ready dict; an unbounded capacity becomes ``None``.

        JSON has no infinity, so ``None`` (``null``) stands for ``math.inf``.
        """
        fields = asdict(self)
        if math.isinf(self.capacity):
            fields["capacity"] = None
        return fields


@dataclass
class Blocking:
    """How often one side of a channel blocked, and for how long in total."""

    count: int = 0
    seconds: float = 0.0
    intervals: list[Interval] | None = None  # kept only when a timeline is wanted

    def timing(self) -> _Timing:
        """Count one block and add the time spent inside the ``with`` body.

        Both are added on the way out, however the body is left — by return,
        cancellation or error — so a snapshot never holds half of a wait; so is
        the interval, when intervals are kept.
        """
        return _Timing(self)


class _Timing:
    """The ``with`` of ``Blocking.timing``: a class, because a generator costs several calls more per wait."""

    __slots__ = ("_blocking", "_start")

    def __init__(self, blocking: Blocking) -> None:
        self._blocking = blocking

    def __enter__(self) -> None:
        self._start = monotonic_ns()

    def __exit__(self, *exc_info: object) -> None:
        end = monotonic_ns()
        blocking = self._blocking
        blocking.count += 1
        blocking.seconds += (end - self._start) / 1e9
        if blocking.intervals is not None:
            blocking.intervals.append((party.get(), self._start, end))


@dataclass
class Tally:
    """The running counts behind a ``ChannelStats``; owned and updated by one channel.

    Updates are plain attribute changes with no ``await`` in between, so on a single
    event loop they never interleave and the counts stay consistent under cancellation.
    """

    sent: int = 0
    received: int = 0
    high_water: int = 0
    sends: Blocking = field(default_factory=Blocking)
    receives: Blocking = field(default_factory=Blocking)

    def record_sent(self, buffered: int) -> None:
        """Count one delivered item; ``buffered`` is the buffer length right after it."""
        self.sent += 1
        self.high_water = max(self.high_water, buffered)

    def record_received(self) -> None:
        """Count one item taken out of the channel."""
        self.received += 1

    def reset(self, buffered: int) -> None:
        """Zero every count; the ``buffered`` items already waiting set the high-water mark.

        In place, so a wait in progress when this is called is recorded here, whole,
        when it ends, and the counts stay consistent with the items that move.
        """
        self.sent = self.received = 0
        self.high_water = buffered
        for side in (self.sends, self.receives):
            side.count, side.seconds = 0, 0.0
            if side.intervals is not None:
                side.intervals = []

    def keep_intervals(self) -> None:
        """From now on keep every blocked interval of both sides (``Blocking.intervals``)."""
        self.sends.intervals, self.receives.intervals = [], []

    def snapshot(self, name: str, capacity: float) -> ChannelStats:
        """Freeze the counts into a ``ChannelStats`` for the channel ``name``."""
        return ChannelStats(
            name=name,
            capacity=capacity,
            sent=self.sent,
            received=self.received,
            blocked_sends=self.sends.count,
            blocked_receives=self.receives.count,
            send_blocked_seconds=self.sends.seconds,
            receive_blocked_seconds=self.receives.seconds,
            high_water=self.high_water,
        )
