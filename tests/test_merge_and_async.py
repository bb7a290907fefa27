"""Merge modes on known changes, and async rounds: every line once, staleness bounded."""

from __future__ import annotations

import math
import random

import anyio
import numpy as np
import pytest

from actors.coordinator import PassPlan, run_pass
from actors.executors.step import Workload
from actors.messages import StepResult
from actors.vocabulary import Rounds
from brain.merge import Merge, merge_divisor

WEIGHTS = 4


def change_of(start: int) -> np.ndarray:
    """The change a slice starting at ``start`` makes: distinct for every slice."""
    return np.array([1.0, start, start**2, (-1.0) ** start])


class AddingExecutor:
    """Sets the worker's replica to its start, adds ``change_of(start)``, after a seeded random delay.

    ``starts`` is the plan's state: the round's snapshot (Sync) or each worker's start (Async).
    """

    name = "adding"

    def __init__(
        self, replicas: np.ndarray, starts: np.ndarray, seed: int = 1, max_delay: float = 0.002
    ) -> None:
        self.replicas = replicas
        self.starts = starts
        self.steps: list[tuple[int, int, int]] = []
        self._random = random.Random(seed)
        self._max_delay = max_delay

    async def run(self, work: Workload, worker: int, start: int, stop: int) -> StepResult:
        if work.mode == "train":
            self.replicas[worker] = self.starts[worker] if self.starts.ndim == 2 else self.starts
        await anyio.sleep(self._random.random() * self._max_delay)
        self.replicas[worker] += change_of(start)
        self.steps.append((worker, start, stop))
        return StepResult(correct=stop - start, seconds=0.0)

    def end_pass(self) -> None:
        pass

    def close(self) -> None:
        pass


def plan_for(
    lines: int, parallel: int, batch: int, merge: str, rounds: str, capacity: float, mode: str = "train"
) -> PassPlan:
    work = Workload(mode, *(None,) * 7)
    main = np.zeros(WEIGHTS)
    replicas = np.full((parallel, WEIGHTS), 7.0)
    state = np.full(replicas.shape if rounds == "Async" else main.shape, -7.0)
    return PassPlan(
        mode, lines, parallel, batch, capacity, capacity, work, main, replicas, merge=Merge(merge),
        rounds=Rounds(rounds), state=state,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("merge", "expected"), [(Merge.MEAN, [3, 3, 3]), (Merge.SUM, [1, 1, 1]), (Merge.HARMONIC, None)]
)
def test_merge_divisors(merge, expected):
    if expected is None:
        assert [merge_divisor(merge, k, 3) for k in (3, 2, 1)] == [3, 2, 1]
    else:
        assert [merge_divisor(merge, k, 3) for k in (3, 2, 1)] == expected


@pytest.mark.asyncio
@pytest.mark.parametrize(("merge", "scale"), [("Mean", 1 / 3), ("Sum", 1.0)])
async def test_mean_and_sum_merges_in_sync_rounds_do_not_depend_on_arrival(merge, scale):
    # 30 lines, 3 workers, 10 per slice: one round; each replica's change is its slice's.
    plan = plan_for(30, 3, 10, merge, "Sync", 3)
    executor = AddingExecutor(plan.replicas, plan.state, seed=5)
    outcome = await run_pass(plan, executor)
    expected = scale * (change_of(0) + change_of(10) + change_of(20))
    np.testing.assert_allclose(plan.main, expected, rtol=1e-15)
    assert outcome.lines == 30


@pytest.mark.asyncio
@pytest.mark.parametrize("capacity", [0, 1, 3, math.inf])
async def test_async_rounds_train_every_line_exactly_once_and_sum_every_change(capacity):
    plan = plan_for(97, 3, 5, "Sum", "Async", capacity)
    executor = AddingExecutor(plan.replicas, plan.state, seed=int(capacity) if capacity != math.inf else 9)
    staleness = []
    with anyio.fail_after(20):
        outcome = await run_pass(plan, executor, lambda record: staleness.append(record.staleness))
    covered = sorted((start, stop) for _, start, stop in executor.steps)
    assert covered == [(s, min(s + 5, 97)) for s in range(0, 97, 5)]
    assert outcome.lines == 97 and outcome.cursor == 97 and not outcome.stopped
    assert outcome.correct == 97  # every report counted once
    # Each replica starts from main as it is then and its whole change is added once: the
    # sum of all changes, whatever the order and the overlap.
    expected = sum(change_of(s) for s in range(0, 97, 5))
    np.testing.assert_allclose(plan.main, expected, rtol=1e-12)
    # A report can be overtaken only by slices in flight at the same time: the workers'
    # and those buffered in the data channel.
    bound = 3 + (capacity if capacity != math.inf else 97)
    assert max(staleness) <= bound
    assert outcome.staleness_max == max(staleness)


@pytest.mark.asyncio
async def test_async_rounds_with_one_worker_have_no_staleness():
    plan = plan_for(40, 1, 10, "Harmonic", "Async", 1)
    executor = AddingExecutor(plan.replicas, plan.state)
    staleness = []
    outcome = await run_pass(plan, executor, lambda record: staleness.append(record.staleness))
    assert staleness == [0, 0, 0, 0]
    assert outcome.rounds == 4
    np.testing.assert_allclose(plan.main, sum(change_of(s) for s in (0, 10, 20, 30)))


@pytest.mark.asyncio
@pytest.mark.parametrize("capacity", [0, 1, math.inf])
async def test_async_rounds_end_when_the_last_report_comes_before_the_data_channel_closes(capacity):
    # Steps that finish at once: the last report can be merged before the sender has
    # closed the data channel; the pass must still end (it used to wait for ever).
    for parallel in (1, 2, 3):
        plan = plan_for(50, parallel, 5, "Sum", "Async", capacity)
        executor = AddingExecutor(plan.replicas, plan.state, max_delay=0.0)
        with anyio.fail_after(10):
            outcome = await run_pass(plan, executor)
        assert outcome.lines == 50


@pytest.mark.asyncio
@pytest.mark.parametrize("capacity", [0, 2])
async def test_an_async_test_pass_counts_every_line_and_merges_nothing(capacity):
    # A worker may take its next slice only after its report is handled: in a test pass
    # nothing is merged, and it used to wait for ever.
    plan = plan_for(60, 2, 5, "Harmonic", "Async", capacity, mode="test")
    executor = AddingExecutor(plan.replicas, plan.state)
    with anyio.fail_after(10):
        outcome = await run_pass(plan, executor)
    assert outcome.correct == outcome.lines == 60
    np.testing.assert_array_equal(plan.main, np.zeros(WEIGHTS))


def test_the_warm_up_loads_both_merge_kernels_before_a_pass_is_timed():
    """A round's last merge takes the next snapshot in its own kernel: it must not compile mid-pass.

    The runner calls ``brain.merge.warm_up`` before the first pass (the steps' kernels load where
    the steps run; ``test_startup`` checks that a run's own process loads exactly these two)."""
    import subprocess
    import sys

    code = (
        "from brain.merge import warm_up; warm_up(); from brain import merge as m; "
        "print(len(m._add_scaled_change.signatures), len(m._add_scaled_change_and_snapshot.signatures))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["1", "1"]
