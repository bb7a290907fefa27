"""The coordinator's round protocol, driven by a scripted executor on a 5-weight network.

The scripted executor stands in for the numeric step: it adds a vector unique to its
slice to the worker's replica and finishes the slices of a round in an order the test
chooses, so the expected main connectome can be computed here from the thesis' rule
(k-th outstanding report of a round gets 1/k, in order of arrival) without the code
under test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import anyio
import numpy as np
import pytest

from actors.coordinator import PassOutcome, PassPlan, RoundRecord, run_pass
from actors.executors.step import Workload
from actors.messages import StepResult
from brain.errors import DivergenceError

WEIGHTS = 5
# Seconds: a pass that hangs outside a round fails its test.  Inside a round the
# coordinator is shielded from outer cancellation, so a round that never ends still hangs.
DEADLINE = 10.0


def change_of(start: int) -> np.ndarray:
    """The change the step of the slice starting at ``start`` makes to a replica: unique per slice."""
    return np.random.default_rng(start).normal(size=WEIGHTS)


def counts_of(start: int, stop: int) -> StepResult:
    """What a test step of lines [start, stop) reports: counts unique to the slice."""
    return StepResult(correct=start % 7, error_sum=0.25 * stop)


def reversed_finish(position: int, size: int) -> int:
    """The last slice sent in a round finishes first."""
    return size - 1 - position


def in_order_finish(position: int, size: int) -> int:
    return position


@dataclass
class Gate:
    """One round of the script: every slice starts, then they finish in rank order."""

    size: int
    started: int = 0
    all_started: anyio.Event = field(default_factory=anyio.Event)
    turns: list[anyio.Event] = field(init=False)

    def __post_init__(self) -> None:
        self.turns = [anyio.Event() for _ in range(self.size)]
        self.turns[0].set()


@dataclass(frozen=True)
class Step:
    round: int
    worker: int
    start: int
    stop: int


class ScriptedExecutor:
    """A fake executor: ``run`` changes ``replicas[worker]`` and finishes in a scripted order.

    As a real step does, a training step first sets its replica to the round's
    snapshot (``plan.state``), then adds its change.

    ``rank(position, size)`` is when the slice at ``position`` of a round of ``size``
    slices finishes (0 first).  Every slice of a round starts before any finishes, so
    each worker takes exactly one slice per round.  ``fail(start)`` may return an
    exception to raise or a ``StepResult`` to return instead; the slices it does not
    touch keep waiting for their turn, which then never comes unless it is theirs.
    """

    name = "scripted"

    def __init__(
        self,
        plan: PassPlan,
        rank: Callable[[int, int], int] = reversed_finish,
        fail: Callable[[int], BaseException | StepResult | None] = lambda start: None,
    ) -> None:
        self.plan = plan
        self.rank = rank
        self.fail = fail
        self.finished: list[Step] = []
        self.started: list[Step] = []
        self.cancelled: list[Step] = []
        self.snapshot_is_main_at_start: list[bool] = []
        self.most_in_flight = 0
        self._gates: dict[int, Gate] = {}

    def _gate(self, round_: int) -> Gate:
        if round_ not in self._gates:
            plan = self.plan
            slices = -(-plan.lines // plan.worker_batch)
            self._gates[round_] = Gate(min(plan.parallel, slices - round_ * plan.parallel))
        return self._gates[round_]

    async def run(self, work: Workload, worker: int, start: int, stop: int) -> StepResult:
        plan = self.plan
        round_, position = divmod(start // plan.worker_batch, plan.parallel)
        step = Step(round_, worker, start, stop)
        self.started.append(step)
        if plan.mode == "train":
            self.snapshot_is_main_at_start.append(bool((plan.state == plan.main).all()))
            plan.replicas[worker] = plan.state
        self.most_in_flight = max(self.most_in_flight, len(self.started) - len(self.finished))
        gate = self._gate(round_)
        gate.started += 1
        if gate.started == gate.size:
            gate.all_started.set()
        try:
            await gate.all_started.wait()
            scripted = self.fail(start)
            if isinstance(scripted, BaseException):
                raise scripted
            if isinstance(scripted, StepResult):
                return scripted
            rank = self.rank(position, gate.size)
            await gate.turns[rank].wait()
        except anyio.get_cancelled_exc_class():
            self.cancelled.append(step)
            raise
        plan.replicas[worker] += change_of(start)
        self.finished.append(step)
        if rank + 1 < gate.size:
            gate.turns[rank + 1].set()
        return counts_of(start, stop) if plan.mode == "test" else StepResult()

    def end_pass(self) -> None:
        pass

    def close(self) -> None:
        pass


def dummy_workload(mode: str) -> Workload:
    """The executor above never reads the workload: every array spec is a placeholder."""
    return Workload(mode, *(None,) * 7)


def make_plan(
    mode: str = "train", lines: int = 23, parallel: int = 2, worker_batch: int = 5, label: str = "epoch 1"
) -> PassPlan:
    main = np.random.default_rng(99).normal(size=WEIGHTS)
    replicas = np.full((parallel, WEIGHTS), 7.0)  # not main: every step must start from the snapshot
    state = np.full(WEIGHTS, -7.0)  # not main: the pass must take the first round's snapshot
    return PassPlan(
        mode, lines, parallel, worker_batch, parallel, parallel, dummy_workload(mode), main, replicas, label,
        state=state,
    )  # fmt: skip


async def run_scripted(plan: PassPlan, executor: ScriptedExecutor) -> tuple[PassOutcome, list[RoundRecord]]:
    records: list[RoundRecord] = []
    with anyio.fail_after(DEADLINE):
        outcome = await run_pass(plan, executor, records.append)
    return outcome, records


def expected_main(initial: np.ndarray, rounds: list[list[int]]) -> np.ndarray:
    """The thesis' merge, from the slices' starts in order of arrival, round by round."""
    main = initial.copy()
    for arrivals in rounds:
        state = main.copy()
        for index, start in enumerate(arrivals):
            outstanding = len(arrivals) - index
            main += ((state + change_of(start)) - state) / outstanding
    return main


def scripted_arrivals(starts: list[int], rank, worker_batch: int, parallel: int) -> list[int]:
    """The order in which the script finishes the slices of one round."""
    return sorted(starts, key=lambda start: rank((start // worker_batch) % parallel, len(starts)))


def arrivals_by_round(executor: ScriptedExecutor) -> list[list[int]]:
    rounds: dict[int, list[int]] = {}
    for step in executor.finished:
        rounds.setdefault(step.round, []).append(step.start)
    return [rounds[r] for r in sorted(rounds)]


@pytest.mark.asyncio
async def test_slices_cover_every_line_once_in_worker_batch_pieces_last_one_short() -> None:
    plan = make_plan(lines=23, parallel=2, worker_batch=5)
    executor = ScriptedExecutor(plan)
    outcome, records = await run_scripted(plan, executor)
    pieces = sorted((s.start, s.stop) for s in executor.started)
    assert pieces == [(0, 5), (5, 10), (10, 15), (15, 20), (20, 23)]
    reported = sorted((r.slice.start, r.slice.stop) for record in records for r in record.reports)
    assert reported == pieces
    assert (outcome.lines, outcome.rounds) == (23, 3)


@pytest.mark.asyncio
async def test_a_round_hands_out_at_most_parallel_slices_of_consecutive_lines() -> None:
    plan = make_plan(lines=23, parallel=2, worker_batch=5)
    executor = ScriptedExecutor(plan)
    _, records = await run_scripted(plan, executor)
    assert [record.round for record in records] == [1, 2, 3]
    assert [len(record.reports) for record in records] == [2, 2, 1]
    assert [record.lines_done for record in records] == [10, 20, 23]
    for record in records:
        assert len({r.slice.round for r in record.reports}) == 1
    assert executor.most_in_flight == 2


@pytest.mark.asyncio
async def test_every_step_starts_from_main_as_its_round_began() -> None:
    plan = make_plan(lines=23, parallel=2, worker_batch=5)
    executor = ScriptedExecutor(plan)
    await run_scripted(plan, executor)
    assert executor.snapshot_is_main_at_start == [True] * 5
    np.testing.assert_array_equal(plan.state, plan.main)  # the last merge took the next snapshot


@pytest.mark.asyncio
async def test_a_training_pass_without_the_array_its_steps_start_from_is_refused() -> None:
    plan = replace(make_plan(), state=None)
    with pytest.raises(ValueError, match="needs a state of shape"):
        await run_pass(plan, ScriptedExecutor(plan))


@pytest.mark.asyncio
async def test_first_finisher_gets_one_nth_and_last_finisher_full_weight() -> None:
    plan = make_plan(lines=3, parallel=3, worker_batch=1)
    plan.main[:] = 0.0
    executor = ScriptedExecutor(plan, rank=lambda position, size: (1, 2, 0)[position])
    await run_scripted(plan, executor)
    assert [s.start for s in executor.finished] == [2, 0, 1]
    expected = change_of(2) / 3 + change_of(0) / 2 + change_of(1) / 1
    np.testing.assert_allclose(plan.main, expected, rtol=1e-13, atol=1e-15)


@pytest.mark.asyncio
@pytest.mark.parametrize("rank", [reversed_finish, in_order_finish], ids=["reversed", "in-order"])
async def test_merge_weights_reports_by_order_of_arrival_over_many_rounds(rank) -> None:
    plan = make_plan(lines=47, parallel=3, worker_batch=4)
    initial = plan.main.copy()
    executor = ScriptedExecutor(plan, rank=rank)
    _, records = await run_scripted(plan, executor)
    rounds = arrivals_by_round(executor)
    assert [[r.slice.start for r in record.reports] for record in records] == rounds
    assert rounds == [scripted_arrivals(starts, rank, worker_batch=4, parallel=3) for starts in rounds]
    np.testing.assert_allclose(plan.main, expected_main(initial, rounds), rtol=1e-12)
    other_order = [list(reversed(starts)) for starts in rounds]
    assert not np.allclose(plan.main, expected_main(initial, other_order), rtol=1e-6)


@pytest.mark.asyncio
async def test_parallel_larger_than_the_slices_merges_by_the_slices_sent() -> None:
    plan = make_plan(lines=7, parallel=4, worker_batch=5)
    initial = plan.main.copy()
    executor = ScriptedExecutor(plan)
    outcome, _ = await run_scripted(plan, executor)
    assert [s.start for s in executor.finished] == [5, 0]
    expected = initial + change_of(5) / 2 + change_of(0) / 1
    np.testing.assert_allclose(plan.main, expected, rtol=1e-13)
    assert (outcome.rounds, outcome.lines, len(outcome.workers)) == (1, 7, 4)
    assert sum(t.lines for t in outcome.workers) == 7


@pytest.mark.asyncio
async def test_test_pass_sums_correct_and_error_and_merges_nothing() -> None:
    plan = make_plan(mode="test", lines=23, parallel=2, worker_batch=5, label="the test pass")
    before = plan.main.copy()
    executor = ScriptedExecutor(plan)
    outcome, _ = await run_scripted(plan, executor)
    assert np.array_equal(plan.main, before)
    starts = range(0, 23, 5)
    assert outcome.correct == sum(start % 7 for start in starts)  # 0+5+3+1+6
    assert outcome.error_sum == pytest.approx(0.25 * (5 + 10 + 15 + 20 + 23))
    assert outcome.lines == 23


@pytest.mark.asyncio
async def test_outcome_carries_both_channels_statistics_and_worker_tallies() -> None:
    plan = make_plan(lines=23, parallel=2, worker_batch=5)
    executor = ScriptedExecutor(plan)
    outcome, _ = await run_scripted(plan, executor)
    data, output = outcome.channels
    assert (data.name, output.name) == ("data", "output")
    assert (data.sent, data.received, output.sent, output.received) == (5, 5, 5, 5)
    assert (data.capacity, output.capacity) == (2, 2)
    assert sorted(t.worker for t in outcome.workers) == [0, 1]
    assert sum(t.lines for t in outcome.workers) == 23
    assert sum(t.slices for t in outcome.workers) == 5
    by_worker = {w: sum(s.stop - s.start for s in executor.finished if s.worker == w) for w in (0, 1)}
    assert {t.worker: t.lines for t in outcome.workers} == by_worker


@pytest.mark.asyncio
async def test_a_failing_step_stops_the_pass_with_its_own_error_and_cancels_the_others() -> None:
    plan = make_plan(lines=23, parallel=3, worker_batch=5)
    executor = ScriptedExecutor(plan, fail=lambda start: RuntimeError("boom") if start == 20 else None)
    with pytest.raises(RuntimeError, match="boom") as caught:
        await run_scripted(plan, executor)
    assert not isinstance(caught.value, BaseExceptionGroup)
    # Round 2 holds the slices at 15 and 20: 20 fails at once, 15 is still waiting for its turn.
    assert {s.start for s in executor.cancelled} == {15}
    assert [s.start for s in executor.finished] == [10, 5, 0]


@pytest.mark.asyncio
async def test_divergence_raises_one_divergence_error_naming_pass_round_and_line() -> None:
    plan = make_plan(lines=23, parallel=2, worker_batch=5, label="epoch 7")
    before_round_2 = expected_main(plan.main, [[5, 0]])
    executor = ScriptedExecutor(plan, fail=lambda start: StepResult(diverged_at=3) if start == 15 else None)
    with pytest.raises(DivergenceError) as caught:
        await run_scripted(plan, executor)
    message = str(caught.value)
    assert "epoch 7, round 2" in message
    assert "line 19 of the pass" in message  # line 15 + 3 + 1, 1-based
    assert {s.start for s in executor.cancelled} == {10}
    # The failing round merged nothing: main holds what round 1 made of it.
    np.testing.assert_allclose(plan.main, before_round_2, rtol=1e-12)
