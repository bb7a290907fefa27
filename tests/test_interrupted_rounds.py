"""A signal in the middle of a round: the first lets the round finish, a second puts main back.

Both requests come from inside round 2 once its first report has been merged — the
moment where finishing and abandoning the round leave different weights.  The
expected weights are the thesis' merge of the reports in the order they arrived
(``test_coordinator.expected_main``), computed here from each slice's known change.
"""

from __future__ import annotations

import signal
from dataclasses import replace

import anyio
import numpy as np
import pytest
from test_coordinator import DEADLINE, change_of, expected_main, make_plan

from actors.coordinator import PassPlan, RoundRecord, run_pass
from actors.executors.step import Workload
from actors.interrupt import Interrupt
from actors.messages import StepResult

# 23 lines, 2 workers, 5 lines a slice: rounds [0, 5) [5, 10) | [10, 15) [15, 20) | [20, 23).
SIGNALLED = 10  # the step that signals: it waits until its round-mate's report is merged


class SignallingExecutor:
    """Each step starts its replica from the round's snapshot and adds its slice's change.

    The step of the slice at ``SIGNALLED`` first waits until main has moved away from
    the round's snapshot — its round-mate has been merged — then sends ``requests``
    interrupt requests, then finishes.
    """

    name = "signalling"

    def __init__(self, plan: PassPlan, requests: int) -> None:
        self.plan = plan
        self.requests = requests
        self.steps: list[int] = []
        self.main_when_signalled: np.ndarray | None = None

    async def run(self, work: Workload, worker: int, start: int, stop: int) -> StepResult:
        plan = self.plan
        plan.replicas[worker] = plan.state
        if start == SIGNALLED:
            while np.array_equal(plan.main, plan.state):
                await anyio.sleep(0.001)
            self.main_when_signalled = plan.main.copy()
            for _ in range(self.requests):
                plan.interrupt.request(signal.SIGINT)
        plan.replicas[worker] += change_of(start)
        self.steps.append(start)
        return StepResult()

    def end_pass(self) -> None:
        pass

    def close(self) -> None:
        pass


async def interrupted_pass(requests: int):
    plan = replace(make_plan(lines=23, parallel=2, worker_batch=5), interrupt=Interrupt())
    initial = plan.main.copy()
    executor = SignallingExecutor(plan, requests)
    records: list[RoundRecord] = []
    with anyio.fail_after(DEADLINE):
        outcome = await run_pass(plan, executor, records.append)
    arrivals = [[report.slice.start for report in record.reports] for record in records]
    return plan, initial, executor, outcome, arrivals


@pytest.mark.asyncio
async def test_the_first_signal_lets_the_round_in_progress_finish_and_merge() -> None:
    plan, initial, executor, outcome, arrivals = await interrupted_pass(requests=1)
    assert sorted(arrivals[1]) == [10, 15] and arrivals[1][0] == 15  # the signalling step came last
    assert (outcome.rounds, outcome.cursor, outcome.lines, outcome.stopped) == (2, 20, 20, True)
    assert 20 not in executor.steps  # no round after the one the signal came in
    np.testing.assert_allclose(plan.main, expected_main(initial, arrivals), rtol=1e-12)


@pytest.mark.asyncio
async def test_a_second_signal_abandons_the_round_and_puts_main_back_to_its_snapshot() -> None:
    plan, initial, executor, outcome, arrivals = await interrupted_pass(requests=2)
    assert len(arrivals) == 1  # round 2 never completed
    snapshot = expected_main(initial, arrivals)
    # When the signals came, main already held part of round 2: putting it back is visible.
    assert not np.allclose(executor.main_when_signalled, snapshot, rtol=1e-6)
    assert (outcome.rounds, outcome.cursor, outcome.lines, outcome.stopped) == (1, 10, 10, True)
    np.testing.assert_allclose(plan.main, snapshot, rtol=1e-12)
