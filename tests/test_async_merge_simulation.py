"""Async rounds, end to end: the weights equal the thesis math replayed in the order the log records.

The JSON log of a run names, merge by merge, which worker's slice was merged and its
staleness (merges that happened while it computed), so a replay knows which main
connectome each step started from and in which order the changes were added.  The
replay trains with ``brain.reference`` and divides as the README says: Mean by
Parallel, Sum by 1, Harmonic by the workers busy at that moment — counted as the
slices sent and not yet merged, this one included, at most Parallel.  With two
workers that count needs no timing: until the last merge another slice is always in
flight (the sender takes up the next slice as soon as it has sent the previous one), so
every merge but the last divides by 2 and the last by 1.  With more workers it
depends on timing the log does not record, so Harmonic is replayed with two.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from test_merge_and_async import AddingExecutor, change_of, plan_for
from tiny_runs import TinyFolder, assert_weights, trained

from actors.coordinator import run_pass
from brain.persistence import Persisted, save_persistence

# 42 lines in 14 slices of 3: every slice full, so the last merge's divisor moves the weights.
WORKER_BATCH = 3


def replay(run, folder: TinyFolder, start: np.ndarray, merge: str, parallel: int) -> np.ndarray:
    """Main after the merges the log records, recomputed with the reference math."""
    rounds = run.rounds()
    versions = [np.array(start, dtype=np.float64)]  # main after 0, 1, 2, … merges
    for merged, record in enumerate(rounds, start=1):
        (piece,) = record["slices"]
        began_from = versions[merged - 1 - record["staleness"]]
        change = trained(began_from, folder.train, range(piece["start"], piece["stop"])) - began_from
        still_to_merge = len(rounds) - merged + 1
        busy = min(parallel, still_to_merge)  # exact with two workers only: see above
        divisor = {"Mean": parallel, "Sum": 1, "Harmonic": busy}[merge]
        versions.append(versions[-1] + change / divisor)
    return versions[-1]


def async_batch(merge: str, parallel: int, executor: str) -> str:
    return (
        f"Parallel: {parallel}\nWorkerBatch: {WORKER_BATCH}\nExecutor: {executor}\nRounds: Async\n"
        f"Merge: {merge}\nShuffle: off\nTrain: 1\n"
    )


@pytest.mark.parametrize("executor", ["inline", "thread"])
@pytest.mark.parametrize(("merge", "parallel"), [("Harmonic", 2), ("Mean", 2), ("Mean", 3), ("Sum", 2)])
def test_async_weights_are_the_replay_of_the_logged_merges(tmp_path, merge, parallel, executor):
    folder = TinyFolder(tmp_path)
    run = folder.run(async_batch(merge, parallel, executor))
    assert run.status == 0
    rounds = run.rounds()
    merged = sorted((record["slices"][0]["start"], record["slices"][0]["stop"]) for record in rounds)
    assert merged == [(start, start + WORKER_BATCH) for start in range(0, 42, WORKER_BATCH)]
    if executor == "inline":  # its schedule is fixed: steps overlap, so starts differ from main
        assert max(record["staleness"] for record in rounds) > 0
    assert_weights(run.weights, replay(run, folder, folder.start.weights, merge, parallel))


@pytest.mark.parametrize(("merge", "other"), [("Harmonic", "Mean"), ("Mean", "Harmonic")])
def test_the_replay_tells_harmonic_from_mean(tmp_path, merge, other):
    # Guards the test above: the two divisors differ at least once, by more than the tolerance.
    folder = TinyFolder(tmp_path)
    run = folder.run(async_batch(merge, 2, "inline"))
    mixed_up = replay(run, folder, folder.start.weights, other, 2)
    assert not np.allclose(run.weights, mixed_up, rtol=1e-6, atol=0)


@pytest.mark.parametrize("executor", ["inline", "thread"])
def test_an_async_epoch_resumed_mid_epoch_trains_the_rest_from_its_saved_line(tmp_path, executor):
    folder = TinyFolder(tmp_path)
    saved_line = 4 * WORKER_BATCH
    checkpoint = np.random.default_rng(11).uniform(-0.5, 0.5, folder.start.weights.shape)
    save_persistence(
        folder.folder / "weights.npz",
        Persisted(
            folder.start.layout, checkpoint, epoch_lines_done=saved_line, batch_pass=1, batch_repetition=1
        ),
    )
    run = folder.run(async_batch("Harmonic", 2, executor), "--resume")
    assert run.status == 0
    (start,) = run.events("pass_start")
    assert start["start_line"] == saved_line
    merged = sorted((record["slices"][0]["start"], record["slices"][0]["stop"]) for record in run.rounds())
    assert merged == [(s, s + WORKER_BATCH) for s in range(saved_line, 42, WORKER_BATCH)]
    (end,) = run.events("pass_end")
    assert end["lines"] == 42 - saved_line
    assert (run.persisted.epoch, run.persisted.epoch_lines_done) == (1, 0)
    assert_weights(run.weights, replay(run, folder, checkpoint, "Harmonic", 2))


@pytest.mark.asyncio
async def test_an_async_pass_starts_at_its_start_line_and_ends_at_the_last():
    plan = replace(plan_for(97, 3, 5, "Sum", "Async", 2), start_line=35)
    executor = AddingExecutor(plan.replicas, plan.state)
    outcome = await run_pass(plan, executor)
    assert sorted((start, stop) for _, start, stop in executor.steps) == [
        (s, min(s + 5, 97)) for s in range(35, 97, 5)
    ]
    assert (outcome.lines, outcome.cursor, outcome.stopped) == (97 - 35, 97, False)
    np.testing.assert_allclose(plan.main, sum(change_of(s) for s in range(35, 97, 5)), rtol=1e-12)
