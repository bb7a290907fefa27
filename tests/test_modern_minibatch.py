"""The fused mini-batch kernels (brain/modern/minibatch.py) against the readable math they replace.

Every kernel does the readable formula's operations in the same order and dtype (a
Python float constant cast to float32 first, as numpy casts it).  So Identity, ReLU,
LeakyReLU, ELU and SELU (whose expm1 is numpy's own, called on the batch) and every
element-wise derivative agree bit for bit, in float64 and in float32.  Where the
kernel calls a function numpy implements differently, the tolerance is a few ulps:
Logistic and TanH use libm's ``exp``/``tanh`` against numpy's vectorised ones (measured
≤ 2 ulps in float64, ≤ 4 in float32), and a softmax sums its row in order where
numpy sums pairwise (≤ 8 ulps on rows of 50).  So rtol 1e-14 in float64 (≈ 45 ulps of
2⁻⁵² ≈ 2.2e-16) and 2e-6 in float32 (≈ 16 ulps of 2⁻²³ ≈ 1.2e-7), with an atol for
values that cancel to about 0 (the softmax's ``y·(e − Σ e·y)``).  Whole training in
float32 carries such differences through the products and ten steps: rtol 1e-5.
"""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest

from brain.activations import Activation
from brain.data.targets import Targets
from brain.layout import Layout
from brain.modern import Modern, initial_weights, new_state, train_modern
from brain.modern.forward import activate, forward, matrices, one_hot
from brain.modern.gradients import backward, output_delta, through_activation
from brain.modern.inputs import gather_inputs
from brain.modern.minibatch import activate as fused_activate
from brain.modern.minibatch import output_rows, through_rows
from brain.modern.optimizers import NO_COPY, apply_update, optimizer_step
from brain.preprocessing import PreProcessing

A = Activation
ELEMENT_WISE = [a for a in Activation if a != A.SoftMax]
EXACT = (A.Identity, A.ReLU, A.LeakyReLU, A.ELU, A.SELU)  # the same operations on the same numbers
TOLERANCE = {np.float64: {"rtol": 1e-14, "atol": 1e-300}, np.float32: {"rtol": 2e-6, "atol": 1e-7}}
DTYPES = [np.float64, np.float32]
DTYPE_IDS = ["float64", "float32"]


def sums(rng, dtype, rows=7, cols=5) -> np.ndarray:
    """Incoming sums on both sides of 0, a few large enough to saturate."""
    z = rng.normal(0.0, 2.0, (rows, cols))
    z[0, :2] = (-30.0, 30.0)
    return z.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("kind", list(Activation), ids=[a.name for a in Activation])
def test_bias_and_activation_in_place_equal_forward(kind, dtype):
    rng = np.random.default_rng(int(kind))
    z, bias = sums(rng, dtype), rng.normal(0.0, 1.0, 5).astype(dtype)
    expected = activate(kind, z + bias, 0.7)
    scratch = np.empty_like(z)
    fused_activate(int(kind), z, bias, 0.7, scratch)
    assert z.dtype == dtype
    if kind in EXACT:
        np.testing.assert_array_equal(z, expected)
    np.testing.assert_allclose(z, expected, **TOLERANCE[dtype])


@pytest.mark.parametrize("kind", ELEMENT_WISE, ids=[a.name for a in ELEMENT_WISE])
def test_a_nan_sum_stays_nan_through_every_activation(kind):
    z = np.array([[np.nan, 1.0, -1.0]])
    fused_activate(int(kind), z, np.empty(0), 1.0, np.empty_like(z))
    assert np.isnan(z[0, 0]) and np.isfinite(z[0, 1:]).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("kind", list(Activation), ids=[a.name for a in Activation])
def test_hidden_delta_and_bias_gradient_equal_through_activation(kind, dtype):
    rng = np.random.default_rng(10 + int(kind))
    a = activate(kind, sums(rng, dtype), 0.7)
    e = rng.normal(0.0, 1.0, a.shape).astype(dtype)
    expected = through_activation(kind, a, e, 0.7)
    grad_bias = np.full(a.shape[1], np.nan, dtype)
    through_rows(int(kind), a, e, 0.7, grad_bias)
    if kind != A.SoftMax:
        np.testing.assert_array_equal(e, expected)
    np.testing.assert_allclose(e, expected, **TOLERANCE[dtype])
    np.testing.assert_allclose(grad_bias, expected.sum(axis=0), **TOLERANCE[dtype])


OUTPUTS = [
    (A.SoftMax, "crossentropy", "labels"),
    (A.SoftMax, "crossentropy", "direct"),
    (A.Logistic, "crossentropy", "direct"),
    (A.SoftMax, "quadratic", "labels"),
    (A.Identity, "quadratic", "direct"),
    (A.ELU, "quadratic", "direct"),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize(
    ("kind", "loss", "targets"), OUTPUTS, ids=[f"{k.name}-{x}-{t}" for k, x, t in OUTPUTS]
)
def test_output_layer_equals_activation_then_output_delta_over_the_batch(kind, loss, targets, dtype):
    rng = np.random.default_rng(20 + int(kind))
    z, bias = sums(rng, dtype), rng.normal(0.0, 1.0, 5).astype(dtype)
    data = Targets(labels=rng.integers(0, 5, 12), direct=np.empty((0, 5)))
    if targets == "direct":
        data = Targets(labels=np.empty(0, np.int64), direct=rng.uniform(0.0, 1.0, (12, 5)))
    rows = rng.permutation(12)[:7]
    hyper = Modern(loss=loss, elu_alpha=0.7)
    y = activate(kind, z + bias, 0.7)
    expected = output_delta(kind, y, one_hot(data, rows, 5, dtype), hyper) / 7
    delta, grad_bias = np.empty_like(z), np.empty(5, dtype)
    assert output_rows(int(kind), z, bias, 0.7, data.labels, data.direct, rows, loss == "crossentropy",
                       delta, grad_bias) == -1  # fmt: skip
    np.testing.assert_allclose(z, y, **TOLERANCE[dtype])
    np.testing.assert_allclose(delta, expected, **TOLERANCE[dtype])
    np.testing.assert_allclose(grad_bias, expected.sum(axis=0), **TOLERANCE[dtype])


def test_output_layer_names_the_first_row_that_is_not_finite():
    z = np.array([[0.0, 1.0], [2.0, 3.0], [np.inf, 0.0], [np.nan, 0.0]])
    labels = np.zeros(4, np.int64)
    delta = np.empty_like(z)
    assert output_rows(int(A.Identity), z, np.empty(0), 1.0, labels, np.empty((0, 2)), np.arange(4), False,
                       delta, np.empty(0)) == 2  # fmt: skip


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam", "adadelta"])
def test_the_update_writes_the_float32_copy_in_the_same_pass(optimizer):
    rng = np.random.default_rng(3)
    w0, grad = rng.normal(0.0, 1.0, 50), rng.normal(0.0, 1.0, 50)
    hyper = Modern(optimizer=optimizer, learning_rate=0.1, lambda_l2=1e-3, lambda_l1=1e-4)
    plain, copied = w0.copy(), w0.copy()
    copy32 = np.full(50, np.nan, np.float32)
    for weights, out in ((plain, NO_COPY), (copied, copy32)):
        optimizer_step(weights, grad, new_state(optimizer, 50), np.zeros(1, np.int64), hyper, out)
    np.testing.assert_array_equal(copied, plain)
    np.testing.assert_array_equal(copy32, plain.astype(np.float32))
    # Only [lo, hi) of the copy is written.
    part = np.full(50, -7.0, np.float32)
    apply_update(0, w0.copy(), grad, np.empty(0), np.empty(0), part, 10, 20,
                 0.1, 0.0, 0.0, 0.0, 0.9, 0.999, 1e-8, 0.95, 1.0, 1.0, 1.0)  # fmt: skip
    assert (part[:10] == -7.0).all() and (part[20:] == -7.0).all() and (part[10:20] != -7.0).all()


def readable_training(weights, layout, inputs, targets, rows, hyper):
    """Mini-batches through the readable forward and backward, in the products' dtype, with the
    float32 copy refreshed by the optimizer: the path ``train_modern`` took before its fused kernels."""
    dtype = hyper.dtype
    work = weights.astype(dtype)
    grad = np.empty(layout.n_weights, dtype)
    state, step = new_state(hyper.optimizer, layout.n_weights), np.zeros(1, np.int64)
    for start in range(0, len(rows), hyper.minibatch):
        batch = rows[start : start + hyper.minibatch]
        mats = matrices(work, layout)
        values = forward(mats, layout, gather_inputs(inputs, batch, hyper.preprocessing, dtype), hyper)
        backward(mats, layout, values, one_hot(targets, batch, layout.n_outputs, dtype), hyper,
                 matrices(grad, layout))  # fmt: skip
        optimizer_step(weights, grad.astype(np.float64), state, step, hyper)
        work[:] = weights


def mnist_like(seed: int, rows: int = 95):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (rows, 12)).astype(np.uint8)
    pixels[:, :3] = 0
    return pixels, Targets(labels=rng.integers(0, 4, rows), direct=np.empty((0, 4))), rng.permutation(rows)


@pytest.mark.parametrize("hidden", [A.ELU, A.SELU, A.TanH], ids=["ELU", "SELU", "TanH"])
def test_float32_training_equals_the_readable_float32_path(hidden):
    layout = Layout.of(("Identity", 12), (hidden, 9), (hidden, 7), ("SoftMax", 4))
    pixels, targets, rows = mnist_like(int(hidden))
    hyper = Modern(optimizer="momentum", learning_rate=0.1, lambda_l2=1e-3, minibatch=10, precision="float32",
                   preprocessing=PreProcessing.Proportional, elu_alpha=1.0)  # fmt: skip
    w0 = initial_weights(layout, "he", 5)
    fast, expected = w0.copy(), w0.copy()
    state = new_state("momentum", layout.n_weights)
    train_modern(fast, state, np.zeros(1, np.int64), layout, pixels, targets, rows, hyper)
    readable_training(expected, layout, pixels, targets, rows, hyper)
    assert not np.array_equal(fast, w0)
    np.testing.assert_allclose(fast, expected, rtol=1e-5, atol=1e-6)


def test_replicas_trained_side_by_side_in_threads_equal_their_training_one_after_the_other():
    # The thread executor trains replicas in one process at once; each thread needs its own buffers.
    layout = Layout.of(("Identity", 12), ("ELU", 40), ("SoftMax", 4))
    pixels, targets, rows = mnist_like(9, rows=4000)
    hyper = Modern(optimizer="momentum", learning_rate=0.05, minibatch=20, precision="float32")
    starts = [initial_weights(layout, "he", seed) for seed in (1, 2, 3)]

    def train(weights, part):
        state = new_state("momentum", layout.n_weights)
        train_modern(weights, state, np.zeros(1, np.int64), layout, pixels, targets, part, hyper)

    parts = [rows, rows[::-1], np.roll(rows, 1000)]
    alone = [w.copy() for w in starts]
    for weights, part in zip(alone, parts, strict=True):
        train(weights, part)
    together = [w.copy() for w in starts]
    threads = [threading.Thread(target=train, args=pair) for pair in zip(together, parts, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for a, b in zip(together, alone, strict=True):
        np.testing.assert_array_equal(a, b)


def test_one_thread_switching_layouts_and_precisions_keeps_each_result():
    layout = Layout.of(("Identity", 12), ("ELU", 9), ("SoftMax", 4))
    other = Layout.of(("Identity", 12), ("ReLU", 5), ("SoftMax", 4))
    pixels, targets, rows = mnist_like(4)
    hyper = Modern(optimizer="sgd", learning_rate=0.1, minibatch=8, precision="float32")

    def trained(net, h):
        weights = initial_weights(net, "he", 1)
        train_modern(weights, {}, np.zeros(1, np.int64), net, pixels, targets, rows, h)
        return weights

    first = trained(layout, hyper)
    trained(other, hyper)
    trained(layout, replace(hyper, precision="float64"))
    trained(layout, replace(hyper, minibatch=3))
    np.testing.assert_array_equal(trained(layout, hyper), first)
