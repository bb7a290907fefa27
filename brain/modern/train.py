"""The entry points of the modern math: train on rows of a data set, test on them.

The runtime calls these from its workers exactly where it calls the thesis
kernels: weights (a flat float64 buffer), optimizer state (flat float64 arrays
shaped like the weights) and the step counter are updated in place.
"""

from __future__ import annotations

import numpy as np

from brain.activations import Activation
from brain.data.targets import Targets
from brain.layout import Layout
from brain.modern.forward import TEST_CHUNK, forward, matrices, one_hot
from brain.modern.hyper import Modern
from brain.modern.inputs import gather_inputs
from brain.modern.minibatch import train_minibatches
from brain.modern.online import online_block
from brain.modern.optimizers import state_pair

_CROSS_ENTROPY_OUTPUTS = (Activation.SoftMax, Activation.Logistic)


def train_modern(
    weights: np.ndarray,
    state: dict[str, np.ndarray],
    step: np.ndarray,
    layout: Layout,
    inputs: np.ndarray,
    targets: Targets,
    rows,
    hyper: Modern,
) -> int:
    """Train ``weights`` in place on ``inputs[rows]``, in order.

    ``hyper.minibatch`` consecutive rows make one gradient and one optimizer step
    (the last mini-batch may be shorter); 1 is online training.  ``state`` holds the
    optimizer's arrays (``optimizer_state_names``), ``step`` (int64, one element)
    counts the optimizer steps taken; both are updated in place.  ``inputs`` may be
    uint8; each mini-batch is converted on its own.

    Returns -1, or the position in ``rows`` of the first row whose output was not
    finite: training stops before that row's mini-batch is applied.  Raises
    ``ValueError`` (a bug: the batch parser rejects it) for cross-entropy without a
    SoftMax or Logistic output layer, and for weights, state, rows, inputs or targets
    that do not fit.
    """
    if weights.shape != (layout.n_weights,) or weights.dtype != np.float64 or not weights.flags.c_contiguous:
        raise ValueError(f"weights must be contiguous float64 of shape ({layout.n_weights},)")
    if step.shape != (1,) or step.dtype != np.int64:
        raise ValueError("step must be an int64 array of one element")
    if hyper.loss == "crossentropy" and layout.layers[-1].activation not in _CROSS_ENTROPY_OUTPUTS:
        raise ValueError("cross-entropy needs a SoftMax or Logistic output layer")
    s1, s2 = state_pair(state, hyper, layout.n_weights)
    rows = np.asarray(rows, np.int64)
    _check_fit(layout, inputs, targets, rows)
    if hyper.minibatch == 1:
        layers = layout.layers
        neurons = np.array([layer.neurons for layer in layers], np.int64)
        bias = np.array([int(layer.bias) for layer in layers], np.int64)
        acts = np.array([int(layer.activation) for layer in layers], np.int64)
        diverged_at = online_block(
            weights, neurons, bias, acts, inputs, targets.labels, targets.direct, rows,
            hyper.loss == "crossentropy", int(hyper.preprocessing), float(hyper.elu_alpha),
            hyper.optimizer_code, s1, s2, step, *_update_parameters(hyper),
        )  # fmt: skip
        return int(diverged_at)
    update = _update_parameters(hyper)
    return train_minibatches(weights, s1, s2, step, layout, inputs, targets, rows, hyper, update)


def _check_fit(layout: Layout, inputs: np.ndarray, targets: Targets, rows: np.ndarray) -> None:
    """The numba loops do no bounds checks: refuse rows, inputs or targets that do not fit."""
    if inputs.ndim != 2 or inputs.shape[1] != layout.n_inputs:
        raise ValueError(f"inputs of shape {inputs.shape} do not fit {layout.n_inputs} input neurons")
    if not len(rows):
        return
    if rows.min() < 0 or rows.max() >= len(inputs):
        raise ValueError("rows outside the data")
    if targets.is_direct:
        if targets.direct.shape[1] != layout.n_outputs or rows.max() >= len(targets.direct):
            raise ValueError(f"direct targets of shape {targets.direct.shape} do not fit the rows")
        return
    if rows.max() >= len(targets.labels):
        raise ValueError("labels do not cover the rows")
    used = targets.labels[rows]
    if used.min() < 0 or used.max() >= layout.n_outputs:
        raise ValueError(f"labels must lie in [0, {layout.n_outputs})")


def _update_parameters(hyper: Modern) -> tuple[float, ...]:
    """lr, λ1, λ2, μ, β1, β2, ε, ρ: the scalar arguments of ``apply_update`` in order."""
    return (
        float(hyper.learning_rate), float(hyper.lambda_l1), float(hyper.lambda_l2), float(hyper.momentum),
        float(hyper.beta1), float(hyper.beta2), float(hyper.epsilon), float(hyper.rho),
    )  # fmt: skip


def test_modern(
    weights: np.ndarray, layout: Layout, inputs: np.ndarray, targets: Targets, rows, hyper: Modern
) -> tuple[int, float]:
    """Forward and check ``inputs[rows]``: (number correct, summed error).

    As in the thesis: a row is correct when the target at the first index of the
    largest output is 1; its error is ``½ Σ (t − y)²``.  The error sum is this
    quadratic one whatever the training loss, so that the result table's ErrorRate
    column compares thesis and modern runs (and cross-entropy with quadratic ones).
    """
    work = weights.astype(hyper.dtype, copy=False)
    mats = matrices(work, layout)
    rows = np.asarray(rows, np.int64)
    _check_fit(layout, inputs, targets, rows)
    correct, error_sum = 0, 0.0
    for start in range(0, len(rows), TEST_CHUNK):
        chunk = rows[start : start + TEST_CHUNK]
        with np.errstate(over="ignore", invalid="ignore"):
            y = forward(mats, layout, gather_inputs(inputs, chunk, hyper.preprocessing, hyper.dtype), hyper)[
                -1
            ]
        t = one_hot(targets, chunk, layout.n_outputs, np.float64)
        predicted = np.argmax(y, axis=1)
        correct += int(np.count_nonzero(t[np.arange(len(chunk)), predicted] == 1.0))
        error_sum += float(0.5 * np.sum((t - y) ** 2))
    return correct, error_sum


test_modern.__test__ = False  # a library function, not a pytest test


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel for uint8 and float64 inputs, writable or
    read-only, in both precisions.

    A first call otherwise pays this inside the first timed epoch; workers call it once at start.
    """
    layout = Layout.of(("Identity", 2), ("ELU", 2), ("SoftMax", 2))  # ELU: the mini-batches' expm1 path
    targets = Targets(labels=np.zeros(2, np.int64), direct=np.empty((0, 2)))
    rows = np.arange(2)
    read_only = [np.ones((2, 2), np.uint8), np.ones((2, 2))]
    for array in read_only:
        array.flags.writeable = False  # as the data loaders hand them out
    for inputs in (np.ones((2, 2), np.uint8), np.ones((2, 2)), *read_only):
        for minibatch, precision in ((1, "float64"), (2, "float64"), (2, "float32")):
            hyper = Modern(minibatch=minibatch, precision=precision, optimizer="sgd")
            weights = np.zeros(layout.n_weights)
            train_modern(weights, {}, np.zeros(1, np.int64), layout, inputs, targets, rows, hyper)
            test_modern(weights, layout, inputs, targets, rows, hyper)
