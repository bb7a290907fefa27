"""A worker takes its next slice only after the coordinator has merged its report.

The pass' channels do not yield when they need not wait, and a step need not yield
either (the inline executor computes in the event loop).  Were the worker to go
straight from its report to the next slice waiting in the data channel, its next step
would overwrite its replica before the coordinator merged the report it holds.
"""

from __future__ import annotations

import math
from dataclasses import replace

import anyio
import numpy as np
import pytest
from test_coordinator import DEADLINE, change_of, expected_main, make_plan

from actors.coordinator import PassPlan, RoundRecord, run_pass
from actors.executors.step import Workload
from actors.messages import StepResult


class ImmediateExecutor:
    """A step that never yields: it sets the replica to the round's snapshot and adds its slice's change."""

    name = "immediate"

    def __init__(self, plan: PassPlan) -> None:
        self.plan = plan

    async def run(self, work: Workload, worker: int, start: int, stop: int) -> StepResult:
        self.plan.replicas[worker] = self.plan.state + change_of(start)
        return StepResult()

    def end_pass(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.mark.asyncio
@pytest.mark.parametrize("parallel", [2, 3])
@pytest.mark.parametrize("capacity", [None, 0, 1, math.inf])
async def test_steps_that_never_yield_still_give_each_worker_one_slice_a_round(
    parallel: int, capacity: float | None
) -> None:
    """Whatever the data channel holds when a worker has reported (a slice in its buffer, a sender
    waiting on a rendezvous, nothing yet), its next step comes after its report's merge: main is
    the thesis' merge of the slices in their order of arrival.  With the default capacity
    (Parallel) every worker also gets one slice a round; with a smaller buffer a worker that
    reports first may take a second slice of the round, as a goroutine ranging over a Go
    channel may (after its first report was merged)."""
    plan = make_plan(lines=47, parallel=parallel, worker_batch=4)
    if capacity is not None:
        plan = replace(plan, data_capacity=capacity)
    initial = plan.main.copy()
    records: list[RoundRecord] = []
    with anyio.fail_after(DEADLINE):
        await run_pass(plan, ImmediateExecutor(plan), records.append)
    if capacity is None:
        for record in records:
            workers = [report.worker for report in record.reports]
            assert len(set(workers)) == len(workers)
    arrivals = [[report.slice.start for report in record.reports] for record in records]
    np.testing.assert_allclose(plan.main, expected_main(initial, arrivals), rtol=1e-12)


class SlowSecondWorker(ImmediateExecutor):
    """Worker 1's step waits a little: worker 0 reports first every round."""

    name = "slow-second"

    def __init__(self, plan: PassPlan) -> None:
        super().__init__(plan)
        self.calls: list[int] = []

    async def run(self, work: Workload, worker: int, start: int, stop: int) -> StepResult:
        self.calls.append(worker)
        await anyio.sleep(0.005 if worker == 1 else 0)
        return await super().run(work, worker, start, stop)


@pytest.mark.asyncio
async def test_the_next_round_s_steps_start_in_the_order_the_workers_reported() -> None:
    """The worker that reported first waits for a slice; the last one to report waits in line behind
    it instead of yielding first, so the next round's steps are handed out first to last reporter
    (as from any queue): the first to report is the one whose process has idled longest."""
    plan = make_plan(lines=40, parallel=2, worker_batch=4)
    initial = plan.main.copy()
    executor = SlowSecondWorker(plan)
    records: list[RoundRecord] = []
    with anyio.fail_after(DEADLINE):
        await run_pass(plan, executor, records.append)
    assert [[report.worker for report in record.reports] for record in records] == [[0, 1]] * 5
    assert executor.calls == [0, 1] * 5
    arrivals = [[report.slice.start for report in record.reports] for record in records]
    np.testing.assert_allclose(plan.main, expected_main(initial, arrivals), rtol=1e-12)
