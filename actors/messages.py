"""What travels through the channels of a pass: slices out to the workers, reports back.

A slice carries its ``Moments``, when its journey happened: whoever handles it stamps
its part with ``actors.clock.now`` — the coordinator (or the async sender) its send,
the worker its receipt, the hand-over to its executor and its report, the coordinator
the report's receipt and its merge; the step stamps itself where it runs
(``StepResult``).  The JSON log writes them per slice (``actors.records.pass_events``)
and ``trace`` draws them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import TYPE_CHECKING, Any, NamedTuple

from actors.clock import now

if TYPE_CHECKING:
    from channels import Channel


@dataclass(slots=True)
class Moments:
    """When each part of one slice's journey happened, on ``actors.clock.now`` (0: not yet, or never).

    Mutable, and carried by the slice: whoever handles the slice stamps its part.
    """

    send_began: int = 0
    sent: int = 0
    asked: int = 0
    received: int = 0
    step_called: int = 0
    step_returned: int = 0
    report_sent: int = 0
    receive_began: int = 0
    report_received: int = 0
    merge_began: int = 0
    merge_ended: int = 0

    def since(self, origin: int) -> dict[str, int | None]:
        """Each moment in nanoseconds after ``origin``; None for a moment that did not happen."""
        values = zip(MOMENTS, _moments(self), strict=True)
        return {name: value - origin if value else None for name, value in values}


# When a slice's journey happened, in order: the coordinator (or async sender) sends it;
# a worker, waiting since ``asked``, receives it, hands it to its executor and gets the
# step back; the worker's report is sent, received by the coordinator (waiting since
# ``receive_began``) and merged.  The step itself is stamped where it ran (StepResult).
MOMENTS = tuple(moment.name for moment in fields(Moments))
_moments = attrgetter(*MOMENTS)  # all of a Moments' values at once


@dataclass(frozen=True, slots=True)
class Slice:
    """Lines ``[start, stop)`` of the pass' order, handed to one worker in round ``round`` (from 1)."""

    round: int
    start: int
    stop: int
    moments: Moments = field(default_factory=Moments, compare=False, repr=False)

    def __len__(self) -> int:
        return self.stop - self.start


class StepResult(NamedTuple):
    """What the numeric step of one slice returns (small: it crosses process boundaries).

    ``diverged_at`` is -1, or the position in the slice of the first sample whose
    output was not finite.  ``began`` and ``ended`` are the step's moments on
    ``actors.clock.now``, ``process`` and ``thread`` where it ran (0: not known, e.g.
    a step on another machine).

    A named tuple, not a dataclass: made twice a step (where the step ran, and again
    from what the pipe brought back), it is built in a quarter of a frozen
    dataclass' time.
    """

    correct: int = 0
    error_sum: float = 0.0
    diverged_at: int = -1
    seconds: float = 0.0
    began: int = 0
    ended: int = 0
    process: int = 0
    thread: int = 0

    def fields(self) -> tuple[int, float, int, float, int, int, int, int]:
        """The fields in order as a plain tuple, ``StepResult(*result.fields()) == result``: what a
        pool process sends back (a plain tuple pickles and unpickles in a fifth of the time: no
        class to name and find)."""
        return tuple(self)


@dataclass(frozen=True, slots=True)
class Report:
    """A worker's report on the output channel: its id (as in Go) and what it measured."""

    worker: int
    slice: Slice
    result: StepResult
    waited_for_slice: float
    started_after: int = -1  # async rounds: merges into main before this step began


async def send_slice(data: Channel[Slice], piece: Slice) -> None:
    """``data.send(piece)``, stamped; cancellation and errors as for ``Channel.send``."""
    piece.moments.send_began = now()
    await data.send(piece)
    piece.moments.sent = now()


def merged(report: Report, merge: Callable[..., None], *args: Any) -> float:
    """``merge(*args)`` -- the report's merge into main -- stamped on its moments; its seconds."""
    at = report.slice.moments
    at.merge_began = now()
    merge(*args)
    at.merge_ended = now()
    return (at.merge_ended - at.merge_began) / 1e9


async def receive_report(output: Channel[Report]) -> Report:
    """``output.receive()``, the wait stamped on the report that ends it; as ``Channel.receive``."""
    began = now()
    report = await output.receive()
    at = report.slice.moments
    at.receive_began, at.report_received = began, now()
    return report
