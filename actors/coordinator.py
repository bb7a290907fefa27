"""The coordinator actor: owns the main connectome and runs a pass as the thesis' rounds.

One round, as the Go program did it:

1. every replica is set to the main connectome;
2. up to Parallel slices of WorkerBatch consecutive lines go into the data channel;
3. the main connectome is snapshot as ``state``;
4. one report per slice comes back on the output channel; the k-th outstanding one
   (k = n, n-1, …, 1 in order of arrival) is merged as ``main += (replica - state) / k``;
5. progress is reported.

A test pass runs the same rounds over the same channels and merges nothing: the
workers' counts of correct answers and error sums are added up instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
import numpy as np

from actors.executors import Executor
from actors.messages import Report, Slice
from actors.step import Workload
from actors.worker import WorkerTally, worker
from brain.errors import DivergenceError
from brain.merge import merge_harmonic, reset_replicas
from channels import Channel, ChannelStats


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


@dataclass(frozen=True)
class RoundRecord:
    """What happened in one round, for progress bars and logs."""

    round: int
    reports: tuple[Report, ...]
    merge_seconds: float
    lines_done: int
    correct: int


@dataclass
class PassOutcome:
    """The totals of a pass."""

    lines: int = 0
    rounds: int = 0
    correct: int = 0
    error_sum: float = 0.0
    seconds: float = 0.0
    merge_seconds: float = 0.0
    channels: tuple[ChannelStats, ...] = ()
    workers: tuple[WorkerTally, ...] = field(default_factory=tuple)


async def run_pass(
    plan: PassPlan, executor: Executor, on_round: Callable[[RoundRecord], None] = lambda record: None
) -> PassOutcome:
    """Run one pass over ``plan.lines`` lines with ``plan.parallel`` worker actors.

    Every actor is started in one task group; the group's exit is the end of the
    pass.  A failing worker cancels the others and the coordinator, and its error
    comes out alone (not wrapped in an exception group).  Divergence raises
    ``DivergenceError`` naming the pass and round; the main connectome then holds
    the state before the failing round's merges are complete and must not be saved.
    """
    data: Channel[Slice] = Channel(plan.data_capacity, name="data")
    output: Channel[Report] = Channel(plan.output_capacity, name="output")
    tallies = tuple(WorkerTally(w) for w in range(plan.parallel))
    outcome = PassOutcome()
    try:
        async with anyio.create_task_group() as group:
            for tally in tallies:
                group.start_soon(worker, tally.worker, data, output, executor, plan.work, tally)
            try:
                await _rounds(plan, executor, data, output, outcome, on_round)
            finally:
                data.close()
    except BaseExceptionGroup as group_error:
        raise _single(group_error) from None
    outcome.channels = (data.stats(), output.stats())
    outcome.workers = tallies
    return outcome


async def _rounds(
    plan: PassPlan,
    executor: Executor,
    data: Channel[Slice],
    output: Channel[Report],
    outcome: PassOutcome,
    on_round: Callable[[RoundRecord], None],
) -> None:
    training = plan.mode == "train"
    state = plan.main.copy() if training else plan.main
    started = time.perf_counter()
    cursor = 0
    while cursor < plan.lines:
        if training:
            reset_replicas(plan.main, plan.replicas)
            np.copyto(state, plan.main)
        begin_round = getattr(executor, "begin_round", None)
        if begin_round is not None:  # an executor that ships main elsewhere (Ray) does it once here
            begin_round(plan.work)
        sent = 0
        while sent < plan.parallel and cursor < plan.lines:
            stop = min(cursor + plan.worker_batch, plan.lines)
            await data.send(Slice(outcome.rounds, cursor, stop))
            cursor = stop
            sent += 1
        reports = []
        merging = 0.0
        for outstanding in range(sent, 0, -1):
            report = await output.receive()
            reports.append(report)
            result = report.result
            if result.diverged_at >= 0:
                raise DivergenceError(
                    f"training diverged in {plan.label or 'the pass'}, round {outcome.rounds + 1}: "
                    f"the output of line {report.slice.start + result.diverged_at + 1} of the pass "
                    "was not finite",
                    allowed="a smaller LearningRate, or weights closer to 0",
                )
            if training:
                began = time.perf_counter()
                merge_harmonic(plan.main, plan.replicas[report.worker], state, outstanding)
                merging += time.perf_counter() - began
            outcome.correct += result.correct
            outcome.error_sum += result.error_sum
            outcome.lines += len(report.slice)
        outcome.merge_seconds += merging
        outcome.rounds += 1
        on_round(RoundRecord(outcome.rounds, tuple(reports), merging, cursor, outcome.correct))
    outcome.seconds = time.perf_counter() - started


def _single(group_error: BaseExceptionGroup) -> BaseException:
    """The one error to show for a failed pass: the first that is not a cancellation."""
    leaves = list(_leaves(group_error))
    for leaf in leaves:
        if not isinstance(leaf, anyio.get_cancelled_exc_class()):
            return leaf
    return leaves[0]


def _leaves(error: BaseException):
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _leaves(inner)
    else:
        yield error
