"""The coordinator actor: owns the main connectome and runs a pass as the thesis' rounds.

One round, as the Go program did it:

1. the main connectome is snapshot as ``state``;
2. up to Parallel slices of WorkerBatch consecutive lines go into the data channel;
3. every worker's step sets its replica to ``state`` and trains it on its slice;
4. one report per slice comes back on the output channel; the k-th outstanding one
   (k = n, n-1, …, 1 in order of arrival) is merged as ``main += (replica - state) / k``;
5. progress is reported.

The Go program set the replicas to main and took the snapshot itself, between
rounds.  Here the snapshot of round r+1 is written by the last merge of round r in
the same pass over the weights, and each step copies it into its replica where it
computes (``actors.executors.step.start_of``): the same numbers, less time between rounds.

A test pass runs the same rounds over the same channels and merges nothing: the
workers' counts of correct answers and error sums are added up instead.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import numpy as np

from actors.async_rounds import AsyncRounds
from actors.exceptions import PassHalted, single_error
from actors.executors.executor import Executor
from actors.executors.step import Workload
from actors.interrupt import Interrupt
from actors.messages import Report, Slice, merged, receive_report, send_slice
from actors.outcome import PassOutcome, RoundRecord, check_finite
from actors.switches import COORDINATOR, Switches
from actors.vocabulary import Rounds
from actors.worker import WorkerTally, worker
from brain.merge import Merge, add_change, add_change_and_snapshot, merge_divisor
from channels import Channel
from channels.stats import acting_as


@dataclass(frozen=True)
class PassPlan:
    """Everything a pass needs that is not a setting of the math."""

    mode: str  # "train" or "test"
    lines: int
    parallel: int
    worker_batch: int
    data_capacity: float
    output_capacity: float
    work: Workload
    main: np.ndarray
    replicas: np.ndarray
    label: str = ""  # e.g. "epoch 3", for messages
    # Training: where steps start, shared with them (see Workload.state): the round's snapshot of
    # main (Sync, main's shape) or each worker's start (Async, the replicas' shape).
    state: np.ndarray | None = None
    start_line: int = 0  # where a resumed epoch continues
    interrupt: Interrupt | None = None
    merge: Merge = Merge.HARMONIC  # see brain.merge.merge_divisor
    rounds: Rounds = Rounds.SYNC  # Async: see actors.async_rounds
    # The weights the pass starts from, copied into main by the coordinator (None: main holds them).
    start_weights: np.ndarray | None = None

    def __post_init__(self) -> None:
        Merge.check(self.merge)
        Rounds.check(self.rounds)


async def run_pass(
    plan: PassPlan, executor: Executor, on_round: Callable[[RoundRecord], None] = lambda record: None
) -> PassOutcome:
    """Run one pass over ``plan.lines`` lines with ``plan.parallel`` worker actors.

    Every actor is started in one task group; the group's exit is the end of the
    pass.  A failing worker cancels the others and the coordinator, and its error
    comes out alone (not wrapped in an exception group).  Divergence raises
    ``DivergenceError`` naming the pass and round; the main connectome then holds
    the state before the failing round's merges are complete and must not be saved.

    The coordinator owns the main connectome for the pass: it copies
    ``plan.start_weights`` into it first, and a training pass' outcome carries a copy
    of it at the end (after the last whole round, if the pass was stopped).
    A ``PassHalted`` error (the executor lost workers it cannot replace) leaves main
    as after the last whole round and carries the outcome up to there, as an
    interrupt does.  The executor hears of the pass' end (``end_pass``) however it ends.
    """
    # Every actor of a pass waits once a round at least: its channels need not yield when they need not wait.
    data: Channel[Slice] = Channel(plan.data_capacity, name="data", timeline=True, fast_path=True)
    output: Channel[Report] = Channel(plan.output_capacity, name="output", timeline=True, fast_path=True)
    tallies = tuple(WorkerTally(w) for w in range(plan.parallel))
    outcome = PassOutcome()
    interrupt = plan.interrupt or Interrupt()
    _check_state(plan)
    if plan.start_weights is not None:
        np.copyto(plan.main, plan.start_weights)
    asynchronous = None
    if plan.rounds is Rounds.ASYNC:
        starts = plan.state if plan.state is not None else np.empty_like(plan.replicas)  # a test pass
        asynchronous = AsyncRounds(plan, starts)
    before_step = asynchronous.before_step if asynchronous else None
    switches = Switches(executor)  # the kernel's counts now; each actor task's resumptions from now on
    tasks = switches.tasks
    try:
        with single_error(), acting_as("coordinator"):
            async with anyio.create_task_group() as group:
                for tally in tallies:
                    group.start_soon(
                        tasks.run, f"worker {tally.worker}", _worker_ending_round, interrupt, tally.worker,
                        data, output, executor, plan.work, tally, before_step,
                    )  # fmt: skip
                try:
                    if asynchronous is not None:
                        await tasks.run(
                            COORDINATOR, asynchronous.run, data, output, outcome, on_round, interrupt, tasks
                        )
                    else:
                        await tasks.run(
                            COORDINATOR, _rounds, plan, executor, data, output, outcome, on_round, interrupt
                        )
                    if outcome.stopped:  # nothing more will be merged: steps in flight are dropped
                        group.cancel_scope.cancel()
                finally:
                    data.close()
    except PassHalted as halted:
        outcome.stopped = True  # the failing round was undone: main is as after the last whole one
        halted.outcome = outcome
        raise
    finally:
        outcome.channels = (data.stats(), output.stats())
        outcome.switches = switches.since()
        outcome.blocked = {channel.name: channel.blocked_intervals() for channel in (data, output)}
        outcome.workers = tallies
        if plan.mode == "train":
            outcome.weights = plan.main.copy()
        executor.end_pass()
    return outcome


def _check_state(plan: PassPlan) -> None:
    """A training pass needs the array its steps start from, shaped for its rounds."""
    if plan.mode != "train":
        return
    shape = plan.replicas.shape if plan.rounds is Rounds.ASYNC else plan.main.shape
    if plan.state is None or plan.state.shape != shape:
        found = None if plan.state is None else plan.state.shape
        raise ValueError(f"a {plan.rounds} training pass needs a state of shape {shape}, not {found}")


async def _worker_ending_round(
    interrupt: Interrupt,
    worker_id: int,
    data: Channel[Slice],
    output: Channel[Report],
    executor: Executor,
    work: Workload,
    tally: WorkerTally,
    before_step: Callable[[int], Awaitable[int]] | None,
) -> None:
    """A worker actor whose error also ends the round waiting for its report (see ``actors.interrupt``)."""
    with acting_as(f"worker {worker_id}"), interrupt.failure_ends_round():
        await worker(worker_id, data, output, executor, work, tally, before_step)


async def _rounds(
    plan: PassPlan,
    executor: Executor,
    data: Channel[Slice],
    output: Channel[Report],
    outcome: PassOutcome,
    on_round: Callable[[RoundRecord], None],
    interrupt: Interrupt,
) -> None:
    state = plan.state
    if plan.mode == "train":
        np.copyto(state, plan.main)  # the first round's snapshot; later ones come with the last merge
    started = time.perf_counter()
    outcome.cursor = plan.start_line
    try:
        with interrupt.rounds(shielded=False):
            while outcome.cursor < plan.lines and not interrupt.requested:  # a first request stops here
                await _round(plan, executor, data, output, outcome, on_round, state)
    finally:  # also when a worker's error cancels the pass: the outcome says how far it got
        outcome.stopped = outcome.cursor < plan.lines
        outcome.seconds = time.perf_counter() - started


async def _round(
    plan: PassPlan,
    executor: Executor,
    data: Channel[Slice],
    output: Channel[Report],
    outcome: PassOutcome,
    on_round: Callable[[RoundRecord], None],
    state: np.ndarray | None,
) -> None:
    """One round; if it is cancelled midway, main is put back and ``outcome`` is left as before it."""
    training = plan.mode == "train"
    cursor = outcome.cursor
    began_round = time.perf_counter()
    reports: list[Report] = []
    merging = 0.0
    try:
        sent = 0
        while sent < plan.parallel and cursor < plan.lines:
            stop = min(cursor + plan.worker_batch, plan.lines)
            await send_slice(data, Slice(outcome.rounds + 1, cursor, stop))
            cursor = stop
            sent += 1
        for _ in range(sent):
            report = await receive_report(output)
            check_finite(plan.label, outcome, report)
            reports.append(report)
            if training:
                # The k-th outstanding report (k = n, n-1, ..., 1 in order of arrival) is divided by
                # merge_divisor: k under Harmonic (the thesis' 1/k), n under Mean, 1 under Sum.
                outstanding = sent - len(reports) + 1
                merge = add_change if outstanding > 1 else add_change_and_snapshot
                divisor = merge_divisor(plan.merge, outstanding, sent)
                merging += merged(report, merge, plan.main, plan.replicas[report.worker], state, divisor)
    except anyio.get_cancelled_exc_class():
        if training:
            np.copyto(plan.main, state)
        raise
    for report in reports:
        outcome.correct += report.result.correct
        outcome.error_sum += report.result.error_sum
        outcome.lines += len(report.slice)
    outcome.merge_seconds += merging
    outcome.cursor = cursor
    outcome.rounds += 1
    record = RoundRecord(
        outcome.rounds, tuple(reports), merging, cursor, outcome.correct, time.perf_counter() - began_round
    )
    outcome.overhead_seconds += record.overhead_seconds
    on_round(record)
