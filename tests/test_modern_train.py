"""The modern entry points: online (numba) and mini-batch training equal the readable math step by step.

The reference below is a plain loop: per mini-batch, pre-process the rows with the
thesis' own ``preprocess``, take ``gradient`` (held to finite differences in
test_modern_gradients.py) and one ``optimizer_step`` (held to hand-derived steps in
test_modern_optimizers.py).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from brain.activations import Activation
from brain.data.targets import Targets
from brain.layout import Layout
from brain.modern import (
    OPTIMIZERS,
    Modern,
    initial_weights,
    new_state,
    replica_state,
    state_to_save,
    test_modern,
    train_modern,
    with_bias,
)
from brain.modern.gradients import gradient
from brain.modern.inputs import gather_inputs
from brain.modern.optimizers import optimizer_step
from brain.persistence import Persisted, load_persistence, save_persistence
from brain.preprocessing import PreProcessing, preprocess

A = Activation


def labels(values) -> Targets:
    return Targets(labels=np.asarray(values, np.int64), direct=np.empty((0, 3)))


def direct(values) -> Targets:
    return Targets(labels=np.empty(0, np.int64), direct=np.asarray(values, np.float64))


def reference_train(weights, state, step, layout, inputs, targets, rows, hyper):
    """Mini-batch by mini-batch with the readable gradient and the optimizer step."""
    for start in range(0, len(rows), hyper.minibatch):
        batch = rows[start : start + hyper.minibatch]
        x = np.array([preprocess(hyper.preprocessing, inputs[r]) for r in batch])
        t = targets.direct[batch] if targets.is_direct else np.eye(layout.n_outputs)[targets.labels[batch]]
        optimizer_step(weights, gradient(weights, layout, x, t, hyper), state, step, hyper)


def small_case(seed: int, hidden: Activation, output: Activation, bias: bool, uint8: bool):
    rng = np.random.default_rng(seed)
    layout = with_bias(Layout.of(("Identity", 6), (hidden, 5), (output, 3)), bias)
    if uint8:
        inputs = rng.integers(0, 256, (30, 6)).astype(np.uint8)
        inputs[:, :2] = 0  # zero inputs: the rows the online kernel may skip
    else:
        inputs = rng.normal(0.0, 1.0, (30, 6))
    if output == A.SoftMax:
        targets = labels(rng.integers(0, 3, 30))
    else:
        targets = direct(rng.uniform(0.0, 1.0, (30, 3)))
    rows = rng.permutation(30)[:25]
    return layout, initial_weights(layout, "glorot", seed), inputs, targets, rows


COMBOS = [
    (A.ReLU, A.SoftMax, "crossentropy"),
    (A.ELU, A.SoftMax, "quadratic"),
    (A.SELU, A.Logistic, "crossentropy"),
    (A.TanH, A.Identity, "quadratic"),
    (A.LeakyReLU, A.SoftMax, "crossentropy"),
    (A.Logistic, A.SELU, "quadratic"),
]


@pytest.mark.parametrize("minibatch", [1, 4], ids=["online", "minibatch"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize(
    ("hidden", "output", "loss"), COMBOS, ids=[f"{h.name}-{o.name}-{x}" for h, o, x in COMBOS]
)
def test_training_equals_the_readable_math(hidden, output, loss, optimizer, minibatch):
    seed = int(hidden) * 100 + int(output) * 10 + OPTIMIZERS.index(optimizer)
    bias = seed % 2 == 0
    uint8 = seed % 3 != 0
    layout, w0, inputs, targets, rows = small_case(seed, hidden, output, bias, uint8)
    lambdas = {"lambda_l2": 1e-3, "lambda_l1": 1e-4} if seed % 4 == 0 else {}
    hyper = Modern(
        learning_rate=0.05 if optimizer in ("sgd", "momentum", "nesterov", "adadelta") else 0.01,
        loss=loss,
        optimizer=optimizer,
        minibatch=minibatch,
        preprocessing=PreProcessing.Proportional if uint8 else PreProcessing.NONE,
        elu_alpha=1.0,
        **lambdas,
    )
    fast, expected = w0.copy(), w0.copy()
    fast_state, expected_state = (
        new_state(optimizer, layout.n_weights),
        new_state(optimizer, layout.n_weights),
    )
    fast_step, expected_step = np.zeros(1, np.int64), np.zeros(1, np.int64)
    assert train_modern(fast, fast_state, fast_step, layout, inputs, targets, rows, hyper) == -1
    reference_train(expected, expected_state, expected_step, layout, inputs, targets, rows, hyper)
    assert fast_step[0] == expected_step[0] == -(-len(rows) // minibatch)
    np.testing.assert_allclose(fast, expected, rtol=1e-9, atol=1e-12)
    for name in fast_state:
        np.testing.assert_allclose(fast_state[name], expected_state[name], rtol=1e-9, atol=1e-15)
    assert not np.array_equal(fast, w0)


def test_training_twice_continues_from_the_state():
    layout, w0, inputs, targets, rows = small_case(7, A.ReLU, A.SoftMax, True, True)
    hyper = Modern(optimizer="adam", minibatch=5, learning_rate=0.01)
    once, state, step = w0.copy(), new_state("adam", layout.n_weights), np.zeros(1, np.int64)
    train_modern(once, state, step, layout, inputs, targets, rows, hyper)
    split, state2, step2 = w0.copy(), new_state("adam", layout.n_weights), np.zeros(1, np.int64)
    train_modern(split, state2, step2, layout, inputs, targets, rows[:10], hyper)
    train_modern(split, state2, step2, layout, inputs, targets, rows[10:], hyper)
    np.testing.assert_allclose(split, once, rtol=1e-12)
    assert step2[0] == step[0] == 5


def test_float32_products_keep_float64_master_weights_close_to_float64_training():
    layout, w0, inputs, targets, rows = small_case(11, A.ELU, A.SoftMax, True, True)
    hyper = Modern(optimizer="momentum", minibatch=5, learning_rate=0.1)
    results = {}
    for precision in ("float64", "float32"):
        w, state, step = w0.copy(), new_state("momentum", layout.n_weights), np.zeros(1, np.int64)
        train_modern(w, state, step, layout, inputs, targets, rows, replace(hyper, precision=precision))
        assert w.dtype == np.float64
        results[precision] = w
    assert not np.array_equal(results["float32"], results["float64"])
    np.testing.assert_allclose(results["float32"], results["float64"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("minibatch", [1, 2])
def test_a_non_finite_output_stops_training_before_its_batch(minibatch):
    layout = Layout.of(("Identity", 2), ("Identity", 2), ("SoftMax", 3))
    inputs = np.array([[1.0, 2.0], [0.5, -1.0], [2.0, 0.0], [np.inf, 1.0], [1.0, 1.0]])
    targets = labels([0, 1, 2, 0, 1])
    hyper = Modern(optimizer="sgd", minibatch=minibatch, learning_rate=0.1, preprocessing=PreProcessing.NONE)
    w0 = initial_weights(layout, "glorot", 3)
    w, step = w0.copy(), np.zeros(1, np.int64)
    assert train_modern(w, {}, step, layout, inputs, targets, np.arange(5), hyper) == 3
    # Only the complete batches before row 3 were applied: rows 0-2 online, rows 0-1 in pairs.
    expected, expected_step = w0.copy(), np.zeros(1, np.int64)
    reference_train(
        expected, {}, expected_step, layout, inputs, targets, np.arange(3 if minibatch == 1 else 2), hyper
    )
    np.testing.assert_allclose(w, expected, rtol=1e-12)
    assert step[0] == expected_step[0]


def test_test_counts_first_argmax_and_sums_the_quadratic_error():
    # Identity 2 -> Identity 2 with the identity matrix and a zero bias: outputs = inputs.
    layout = Layout.of(("Identity", 2), ("Identity", 2))
    weights = np.array([1.0, 0.0, 0.0, 1.0, 0.0, 0.0])
    inputs = np.array([[3.0, 1.0], [0.0, 2.0], [1.0, 1.0]])
    targets = Targets(labels=np.array([0, 0, 1]), direct=np.empty((0, 2)))
    hyper = Modern(loss="quadratic", preprocessing=PreProcessing.NONE)
    # [3,1] -> 0 correct; [0,2] -> 1 wrong; [1,1] -> first index 0, label 1: wrong.
    # errors ½((1-3)² + 1²) = 2.5, ½(1² + 2²) = 2.5, ½(1² + 0²) = 0.5
    for precision in ("float64", "float32"):
        correct, error = test_modern(
            weights, layout, inputs, targets, np.arange(3), replace(hyper, precision=precision)
        )
        assert correct == 1
        assert error == pytest.approx(5.5, rel=1e-7)
    assert test_modern(weights, layout, inputs, targets, [2, 0], hyper) == (1, 3.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("preprocessing", list(PreProcessing))
def test_gathered_inputs_are_the_thesis_preprocessing_of_the_rows(preprocessing, dtype):
    rng = np.random.default_rng(int(preprocessing))
    pixels = rng.integers(0, 256, (8, 5)).astype(np.uint8)
    pixels[3] = 0  # a row whose maximum is 0 stays 0
    reals = rng.normal(0.0, 2.0, (8, 5))
    rows = np.array([4, 3, 0, 7])
    for data in (pixels, reals):
        out = gather_inputs(data, rows, preprocessing, dtype)
        expected = np.array([preprocess(preprocessing, data[r]) for r in rows]).astype(dtype)
        assert out.dtype == dtype
        np.testing.assert_allclose(out, expected, rtol=1e-6 if dtype == np.float32 else 1e-15)


def test_rows_or_inputs_that_do_not_fit_are_refused():
    layout, w0, inputs, targets, _ = small_case(1, A.ReLU, A.SoftMax, True, True)
    hyper = Modern(optimizer="sgd", minibatch=1)
    for rows in ([0, 30], [-1]):
        with pytest.raises(ValueError, match="rows outside"):
            train_modern(w0.copy(), {}, np.zeros(1, np.int64), layout, inputs, targets, rows, hyper)
    with pytest.raises(ValueError, match="do not fit"):
        train_modern(w0.copy(), {}, np.zeros(1, np.int64), layout, inputs[:, :4], targets, [0], hyper)
    with pytest.raises(ValueError, match="step must be"):
        train_modern(w0.copy(), {}, np.zeros(1), layout, inputs, targets, [0], hyper)
    bad = labels([5] * 30)
    with pytest.raises(ValueError, match="labels must lie"):
        test_modern(w0, layout, inputs, bad, [0], hyper)


def test_replica_state_survives_the_persistence_file(tmp_path):
    layout, w0, inputs, targets, rows = small_case(2, A.ReLU, A.SoftMax, True, True)
    hyper = Modern(optimizer="nadam", minibatch=5, learning_rate=0.01)
    stacks, steps = replica_state("nadam", 2, layout.n_weights)
    for r, part in enumerate((rows[:10], rows[10:])):
        replica = w0.copy()
        state = {name: stack[r] for name, stack in stacks.items()}
        train_modern(replica, state, steps[r : r + 1], layout, inputs, targets, part, hyper)
    assert list(steps) == [2, 3] and stacks["m"][0].any() and stacks["m"][1].any()
    extra = state_to_save(stacks, steps)
    save_persistence(tmp_path / "s.npz", Persisted(layout, w0, semantics="modern", extra=extra))
    loaded = load_persistence(tmp_path / "s.npz", layout).extra
    assert set(loaded) == {"m", "v", "step"}
    same, same_steps = replica_state("NAdam", 2, layout.n_weights, loaded)
    np.testing.assert_array_equal(same["v"], stacks["v"])
    assert list(same_steps) == [2, 3]
    # Another number of replicas: each starts from the mean state and the largest step count.
    (one, one_steps), (three, _) = (replica_state("nadam", k, layout.n_weights, loaded) for k in (1, 3))
    np.testing.assert_allclose(one["m"][0], (stacks["m"][0] + stacks["m"][1]) / 2, rtol=1e-15)
    assert one_steps.tolist() == [3] and three["m"].shape == (3, layout.n_weights)
    # Another optimizer starts fresh.
    fresh, fresh_steps = replica_state("momentum", 2, layout.n_weights, loaded)
    assert not fresh["velocity"].any() and not fresh_steps.any()


@pytest.mark.slow
def test_mnist_modern_training_reaches_96_percent_in_two_epochs(mnist_dir):
    from brain.data import interpret_targets, load_dataset

    train = load_dataset(mnist_dir / "train-images-idx3-ubyte.gz")
    test = load_dataset(mnist_dir / "t10k-images-idx3-ubyte.gz")
    layout = Layout.of(("Identity", 784), ("ELU", 100), ("SoftMax", 10))
    hyper = Modern(optimizer="momentum", learning_rate=0.2, minibatch=100, precision="float32", elu_alpha=1.0,
                   lambda_l2=1e-4)  # fmt: skip
    weights = initial_weights(layout, "he", 42)
    state, step = new_state("momentum", layout.n_weights), np.zeros(1, np.int64)
    rng = np.random.default_rng(42)
    for _ in range(2):
        order = rng.permutation(len(train))
        assert (
            train_modern(
                weights, state, step, layout, train.inputs, interpret_targets(train, 10), order, hyper
            )
            == -1
        )
    correct, _ = test_modern(
        weights, layout, test.inputs, interpret_targets(test, 10), np.arange(len(test)), hyper
    )
    assert correct >= 9600
