"""A worker actor: receives slices from the data channel, has them computed, reports its id.

The Go original's worker goroutine, line for line::

    for batch := range dataChannel { train(batch); outputChannel <- id }
"""

from __future__ import annotations

from asyncio import sleep
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from actors.clock import now
from actors.messages import Report, Slice
from channels import Channel

if TYPE_CHECKING:  # a pass' outcome (WorkerTally) is read without the kernels a step needs
    from actors.executors.executor import Executor
    from actors.executors.step import Workload


@dataclass
class WorkerTally:
    """What one worker did in a pass: slices, lines, seconds computing and waiting."""

    worker: int
    slices: int = 0
    lines: int = 0
    computing: float = 0.0
    waiting_for_slices: float = 0.0
    waiting_to_report: float = 0.0

    def as_dict(self) -> dict[str, float | int]:
        return dict(self.__dict__)


async def worker(
    worker_id: int,
    data: Channel[Slice],
    output: Channel[Report],
    executor: Executor,
    work: Workload,
    tally: WorkerTally,
    before_step: Callable[[int], Awaitable[int]] | None = None,
) -> None:
    """Loop until the data channel is closed: receive a slice, run its step, report.

    On cancellation (a failing sibling, an interrupt) the worker stops at its next
    await; a step already handed to a thread or process finishes there and its result
    is dropped.  An exception from the step propagates and cancels the pass.
    ``before_step`` (async rounds) sets up the replica and returns main's merge count.
    The worker stamps its part of each slice's ``moments``.
    """
    mark = now()
    async for piece in data:
        at = piece.moments
        at.asked, at.received = mark, now()
        waited = (at.received - mark) / 1e9
        started_after = await before_step(worker_id) if before_step is not None else -1
        at.step_called = now()
        result = await executor.run(work, worker_id, piece.start, piece.stop)
        at.step_returned = now()
        tally.slices += 1
        tally.lines += len(piece)
        tally.computing += result.seconds
        tally.waiting_for_slices += waited
        await output.send(Report(worker_id, piece, result, waited, started_after))
        mark = at.report_sent = now()
        tally.waiting_to_report += (mark - at.step_returned) / 1e9
        # The pass' channels do not yield when they need not wait: yield here, so that the coordinator
        # merges this report before this worker can take another slice and reuse the replica it reads --
        # unless another worker already waits for a slice: then the data channel holds none, this
        # worker's receive waits too, in line behind it, and the coordinator (whom the report's
        # hand-over scheduled first) merges before any slice comes.  The round's next slices then go
        # out in the order the workers reported, as they would from any queue.  asyncio's own yield
        # (the runtime's loop is asyncio's): anyio's checkpoint would first find the running library
        # and look for a cancellation, twice the time, which the next wait does anyway.
        if not data.receiver_waiting:
            await sleep(0)
