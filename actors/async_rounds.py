"""Rounds without a barrier (``Rounds: Async``): a worker that reports gets the next slice at once.

A sender actor pushes every slice into the data channel (blocking while it is
full); each worker, just before its step, copies the main connectome *as it is
then* into its start (the step copies that into the replica) and notes how many
merges main has had; the coordinator
merges each report as it arrives.  A report's staleness is the number of merges
that happened while it computed — bounded by the slices that can be in flight,
Parallel plus the data channel's capacity.

Merge divisors without rounds: Harmonic divides by the workers busy at that
moment (this one included; at most Parallel), Mean by Parallel, Sum by 1.  A
worker starts its next step only once its previous report is merged.

On the first interrupt the sender stops, the slices in flight are merged, and
the pass ends with every sent line trained once: a consistent checkpoint.  On a
second one the slices in flight are dropped; the checkpoint then restarts from
the earliest of them, so a resumed run may train again a few slices that had
already been merged after it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import numpy as np

from actors.interrupt import Interrupt
from actors.messages import Report, Slice, merged, receive_report, send_slice
from actors.outcome import PassOutcome, RoundRecord, check_finite
from actors.switches import TaskSwitches
from brain.merge import add_change, merge_divisor
from channels import Channel
from channels.stats import acting_as


class AsyncRounds:
    """The coordinator's side of an async pass: the sender, the merges, staleness."""

    def __init__(self, plan, starts: np.ndarray) -> None:
        self.plan = plan
        self.starts = starts
        self.merges = 0
        self.in_flight: dict[int, Slice] = {}
        self.staleness: list[int] = []
        self._merged = [anyio.Event() for _ in range(plan.parallel)]
        for event in self._merged:
            event.set()

    async def before_step(self, worker: int) -> int:
        """Run by a worker before its step: its start (and so its replica) is main as it is now.

        Waits until the worker's previous report has been merged: the replica holds
        that report's change until then.  Cancellation: nothing has been changed.
        """
        await self._merged[worker].wait()
        self._merged[worker] = anyio.Event()
        if self.plan.mode == "train":
            np.copyto(self.starts[worker], self.plan.main)  # the step copies it into the replica
        return self.merges

    async def run(
        self,
        data: Channel[Slice],
        output: Channel[Report],
        outcome: PassOutcome,
        on_round: Callable[[RoundRecord], None],
        interrupt: Interrupt,
        tasks: TaskSwitches | None = None,
    ) -> None:
        """Send every slice and merge every report; see the module's docstring for interrupts.

        ``tasks`` counts the sender task's resumptions (as ``sender``).
        """
        plan = self.plan
        training = plan.mode == "train"
        slices = _slices(plan.start_line, plan.lines, plan.worker_batch)
        started = time.perf_counter()
        sent_until = plan.start_line
        async with anyio.create_task_group() as group:

            async def send_all() -> None:
                nonlocal sent_until
                with acting_as("sender"), interrupt.between_rounds():
                    for number, (first, stop) in enumerate(slices, start=1):
                        piece = Slice(number, first, stop)
                        self.in_flight[first] = piece  # before the send: its report may come at once
                        try:
                            await send_slice(data, piece)
                        except anyio.get_cancelled_exc_class():
                            del self.in_flight[first]  # a cancelled send delivered nothing
                            raise
                        sent_until = stop
                data.close()

            group.start_soon((tasks or TaskSwitches()).run, "sender", send_all)
            with interrupt.rounds(shielded=True) as receiving:
                while not (data.closed and not self.in_flight):
                    began = time.perf_counter()
                    report = await receive_report(output)
                    self.in_flight.pop(report.slice.start, None)
                    check_finite(plan.label, outcome, report)
                    merging = 0.0
                    if training:
                        busy = min(len(self.in_flight) + 1, plan.parallel)
                        divisor = merge_divisor(plan.merge, busy, plan.parallel)
                        worker = report.worker
                        merging = merged(
                            report, add_change, plan.main, plan.replicas[worker], self.starts[worker], divisor
                        )
                        self.merges += 1
                        self.staleness.append(self.merges - 1 - report.started_after)
                    self._merged[report.worker].set()  # its replica may be reused now
                    outcome.correct += report.result.correct
                    outcome.error_sum += report.result.error_sum
                    outcome.lines += len(report.slice)
                    outcome.merge_seconds += merging
                    outcome.rounds += 1
                    on_round(_record(outcome, report, merging, time.perf_counter() - began, self))
            if receiving.cancelled_caught:
                group.cancel_scope.cancel()
        unmerged = [piece.start for piece in self.in_flight.values()]
        outcome.cursor = min(unmerged) if unmerged else sent_until
        outcome.stopped = outcome.cursor < plan.lines
        outcome.seconds = time.perf_counter() - started
        if self.staleness:
            outcome.staleness_max = max(self.staleness)
            outcome.staleness_mean = sum(self.staleness) / len(self.staleness)


def _slices(start: int, lines: int, batch: int) -> list[tuple[int, int]]:
    return [(first, min(first + batch, lines)) for first in range(start, lines, batch)]


def _record(
    outcome: PassOutcome, report: Report, merging: float, seconds: float, rounds: AsyncRounds
) -> RoundRecord:
    staleness = rounds.staleness[-1] if rounds.staleness else 0
    return RoundRecord(
        outcome.rounds, (report,), merging, report.slice.stop, outcome.correct, seconds, staleness
    )
