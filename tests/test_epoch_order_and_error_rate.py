"""What a run reports and trains, checked against numbers derived here: the shuffle of each epoch
and the test pass' ErrorRate and percentages.
"""

from __future__ import annotations

import numpy as np
import pytest
from tiny_runs import TinyFolder, assert_weights, scored, trained

SEED = 7
ONE_WORKER = "Parallel: 1\nWorkerBatch: 5\nExecutor: inline\n"


def order_of(epoch: int, lines: int) -> np.ndarray:
    """Epoch ``epoch``'s order: a permutation seeded by (Seed, epoch).

    Pinned exactly, not only "some permutation": a checkpoint resumes its epoch in this
    order, so a checkpoint written before a change must still resume after it.
    """
    return np.random.default_rng([SEED, epoch]).permutation(lines)


def test_every_epoch_trains_in_its_own_seeded_order(tmp_path):
    folder = TinyFolder(tmp_path)
    run = folder.run(f"{ONE_WORKER}Seed: {SEED}\nShuffle: on\nTrain: 2\n")
    assert run.status == 0
    lines = len(folder.train)
    first, second = order_of(1, lines), order_of(2, lines)
    assert not np.array_equal(first, second)
    expected = trained(trained(folder.start.weights, folder.train, first), folder.train, second)
    assert_weights(run.weights, expected)
    # The same order twice would have given other weights: the test can tell.
    same_twice = trained(trained(folder.start.weights, folder.train, first), folder.train, first)
    assert not np.allclose(run.weights, same_twice, rtol=1e-6, atol=0)


def test_without_shuffle_every_epoch_trains_in_file_order(tmp_path):
    folder = TinyFolder(tmp_path)
    run = folder.run(f"{ONE_WORKER}Seed: {SEED}\nShuffle: off\nTrain: 2\n")
    assert run.status == 0
    in_file_order = range(len(folder.train))
    expected = trained(
        trained(folder.start.weights, folder.train, in_file_order), folder.train, in_file_order
    )
    assert_weights(run.weights, expected)


@pytest.mark.parametrize("parallel", [1, 2])
def test_a_test_pass_reports_error_rate_and_percentages_in_percent(tmp_path, parallel):
    folder = TinyFolder(tmp_path)
    run = folder.run(f"Parallel: {parallel}\nWorkerBatch: 7\nExecutor: inline\nTest: 1\n")
    assert run.status == 0
    lines = len(folder.test)
    correct, error_sum = scored(folder.start.weights, folder.test)
    assert 0 < correct < lines and error_sum > 0  # every column below is a real number, not 0 or 100
    (row,) = run.rows
    assert row["Mode"] == "test" and row["EpochLines"] == lines
    assert (row["Correct"], row["Incorrect"]) == (correct, lines - correct)
    assert row["CorrectPercent"] == pytest.approx(100 * correct / lines, rel=1e-12)
    assert row["IncorrectPercent"] == pytest.approx(100 * (lines - correct) / lines, rel=1e-12)
    # ErrorRate is 100 · Σ 0.5·(t−y)² / lines: a per cent of the mean error, as the README says.
    assert row["ErrorRate"] == pytest.approx(100 * error_sum / lines, rel=1e-12)
    (end,) = run.events("pass_end")
    assert end["error_rate"] == pytest.approx(100 * error_sum / lines, rel=1e-12)
    assert end["correct_percent"] == pytest.approx(100 * correct / lines, rel=1e-12)
