"""The one numeric step every executor runs (``brain.step.step``), held to the readable reference.

Thesis math on a tiny network: the step must train and test what
``brain.reference`` — the equations, one sample at a time — trains and tests.
Agreement is to 1e-12 relative, with the absolute floor of ``test_kernels`` (the
two add in different orders; see there why that floor cannot hide a real difference).
"""

from __future__ import annotations

import numpy as np
import pytest
from brain_helpers import index_targets

from brain import reference
from brain.connectome import Connectome
from brain.hyper import Hyper
from brain.layout import Layout
from brain.modern import Modern, optimizer_state_names
from brain.preprocessing import PreProcessing
from brain.step import Math, Optimizer, step

RTOL = 1e-12
LAYOUT = Layout.of(("Identity", 4), ("ELU", 3), ("SoftMax", 2))
HYPER = Hyper(learning_rate=0.05, lambda_=1e-3, preprocessing=PreProcessing.Proportional, elu_alpha=0.5)


@pytest.fixture
def case():
    rng = np.random.default_rng(5)
    inputs = rng.integers(0, 256, (12, 4)).astype(np.uint8)
    inputs[rng.random(inputs.shape) < 0.4] = 0  # idle inputs: the kernels' lazy regularisation
    targets = index_targets(rng.integers(0, 2, 12), 2)
    rows = np.array([3, 0, 7, 7, 11, 2, 5, 9], np.int64)  # an order, one row twice, some left out
    return Connectome.uniform(LAYOUT, -1.0, 1.0, 5), inputs, targets, rows


def test_a_thesis_training_step_sets_the_replica_to_its_start_and_trains_what_the_reference_trains(case):
    net, inputs, targets, rows = case
    expected = net.copy()
    reference.train_rows(expected, inputs, targets, rows, HYPER)
    replica = np.full(LAYOUT.n_weights, 7.0)  # what the replica held before: must not matter
    outcome = step(replica, inputs, targets, rows, Math(LAYOUT, HYPER), training=True, start=net.weights)
    assert outcome.diverged_at == -1
    assert np.abs(expected.weights - net.weights).max() > 1e-6, "training must change the weights"
    floor = RTOL * np.abs(expected.weights).max()
    np.testing.assert_allclose(replica, expected.weights, rtol=RTOL, atol=floor)


def test_a_thesis_test_step_counts_what_the_reference_counts_and_leaves_the_weights(case):
    net, inputs, targets, rows = case
    weights = net.weights.copy()
    outcome = step(weights, inputs, targets, rows, Math(LAYOUT, HYPER), training=False)
    correct, error_sum = reference.test_rows(net, inputs, targets, rows, HYPER)
    assert outcome.correct == correct
    assert outcome.error_sum == pytest.approx(error_sum, rel=RTOL)
    assert outcome.diverged_at == -1
    assert np.array_equal(weights, net.weights)


def test_a_modern_training_step_updates_the_replicas_optimizer_state_in_place(case):
    net, inputs, targets, rows = case
    modern = Modern(learning_rate=0.01, optimizer="adam", minibatch=3)
    arrays = {name: np.zeros(LAYOUT.n_weights) for name in optimizer_state_names("adam")}
    optimizer = Optimizer(arrays, np.array([5], np.int64))
    weights = net.weights.copy()
    outcome = step(weights, inputs, targets, rows, Math(LAYOUT, modern), training=True, optimizer=optimizer)
    assert outcome.diverged_at == -1
    assert optimizer.steps[0] == 5 + 3  # 8 rows in mini-batches of 3: three optimizer steps
    assert all(np.abs(array).max() > 0 for array in arrays.values())
    assert not np.array_equal(weights, net.weights)


def test_a_modern_training_step_without_the_optimizer_state_is_refused(case):
    net, inputs, targets, rows = case
    with pytest.raises(ValueError, match="optimizer state"):
        step(net.weights.copy(), inputs, targets, rows, Math(LAYOUT, Modern()), training=True)
