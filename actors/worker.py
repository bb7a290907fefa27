"""A worker actor: receives slices from the data channel, has them computed, reports its id.

The Go original's worker goroutine, line for line::

    for batch := range dataChannel { train(batch); outputChannel <- id }
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

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
    """
    clock = time.perf_counter
    mark = clock()
    async for piece in data:
        waited = clock() - mark
        started_after = await before_step(worker_id) if before_step is not None else -1
        result = await executor.run(work, worker_id, piece.start, piece.stop)
        tally.slices += 1
        tally.lines += len(piece)
        tally.computing += result.seconds
        tally.waiting_for_slices += waited
        sent = clock()
        await output.send(Report(worker_id, piece, result, waited, started_after))
        mark = clock()
        tally.waiting_to_report += mark - sent
