"""What a channel counts about itself: the blocking the thesis measures.

``ChannelStats`` is the frozen snapshot a caller reads and logs; ``Tally`` (with one
``Blocking`` per side) is the mutable record a ``Channel`` keeps and turns into one.
Blocked time is wall time (``time.perf_counter``) from the moment an operation found
the channel full (or empty) until it returned, was cancelled or failed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from time import perf_counter


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

    def timing(self) -> _Timing:
        """Count one block and add the time spent inside the ``with`` body.

        Both are added on the way out, however the body is left — by return,
        cancellation or error — so a snapshot never holds half of a wait.
        """
        return _Timing(self)


class _Timing:
    """The ``with`` of ``Blocking.timing``: a class, because a generator costs several calls more per wait."""

    __slots__ = ("_blocking", "_start")

    def __init__(self, blocking: Blocking) -> None:
        self._blocking = blocking

    def __enter__(self) -> None:
        self._start = perf_counter()

    def __exit__(self, *exc_info: object) -> None:
        self._blocking.count += 1
        self._blocking.seconds += perf_counter() - self._start


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
