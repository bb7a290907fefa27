"""Fast kernels: the thesis math of ``brain.reference`` compiled with numba.

FAST PATH — the tests hold every number here equal to ``brain.reference``.

Both kernels work on the flat weight buffer of a ``Connectome`` and on raw input
rows (uint8 pixels or float64), reading ``rows`` — indices into the data — in
order.  They release the GIL, so threads can run them side by side.

One optimisation changes the arithmetic (not the result beyond rounding): the
elastic-net term touches every weight on every sample, but a weight of the first
matrix whose input neuron is 0 gets *only* that term, w <- (1 + 2 lr λ) w + lr λ sgn w,
whose k-fold repetition has the closed form A_k w + B_k sgn w (the sign never
changes under it for λ ≥ 0).  Such rows are brought up to date lazily — when the
row is next read, and at the end of the block — so a sample costs work in
proportion to its non-zero pixels (about a fifth of MNIST's) instead of all 785 rows.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from brain.activations import LEAKY_SLOPE, SELU_ALPHA, SELU_SCALE, Activation
from brain.connectome import Connectome
from brain.hyper import Hyper
from brain.layout import Layout

IDENTITY, LOGISTIC, TANH, RELU, LEAKY, ELU, SOFTMAX, SELU = (int(a) for a in Activation)
PRE_NONE, PRE_PROPORTIONAL, PRE_MIDRANGE = 0, 1, 2


@njit(cache=True, nogil=True)
def _think(kind, z, out, n, size, alpha):
    """out[:n] = f(z[:n] / size) — one layer's normalisation and activation."""
    if kind == SOFTMAX:
        top = -np.inf
        for j in range(n):
            x = z[j] / size
            out[j] = x
            if x > top:
                top = x
        total = 0.0
        for j in range(n):
            out[j] = math.exp(out[j] - top)
            total += out[j]
        for j in range(n):
            out[j] = out[j] / total
        return
    for j in range(n):
        x = z[j] / size
        if kind == IDENTITY:
            y = x
        elif kind == LOGISTIC:
            y = 1.0 / (1.0 + math.exp(-x))
        elif kind == TANH:
            y = math.tanh(x)
        elif kind == RELU:
            y = x if x > 0.0 else 0.0
        elif kind == LEAKY:
            y = x if x >= 0.0 else LEAKY_SLOPE * x
        elif kind == ELU:
            y = x if x >= 0.0 else alpha * (math.exp(x) - 1.0)
        else:  # SELU
            y = SELU_SCALE * (x if x > 0.0 else SELU_ALPHA * (math.exp(x) - 1.0))
        out[j] = y


@njit(cache=True, nogil=True)
def _derivative(kind, y, alpha):
    """f'(x) from the activated value y, as the thesis program computed it."""
    if kind == IDENTITY:
        return 1.0
    if kind in (LOGISTIC, SOFTMAX):
        return (1.0 - y) * y
    if kind == TANH:
        return 1.0 - y * y
    if kind == RELU:
        return 1.0 if y > 0.0 else 0.0
    if kind == LEAKY:
        return 1.0 if y > 0.0 else LEAKY_SLOPE
    if kind == ELU:
        return 1.0 if y > 0.0 else y + alpha
    return SELU_SCALE if y > 0.0 else y + SELU_SCALE * SELU_ALPHA  # SELU


@njit(cache=True, nogil=True, inline="always")
def _sgn(w):
    # copysign, not nested conditionals: random signs would defeat branch prediction.
    return math.copysign(1.0, w) if w != 0.0 else 0.0


@njit(cache=True, nogil=True)
def _catch_up(weights, start, cols, a, b):
    """Apply k pending regularisation-only steps to one row: w <- A_k w + B_k sgn w."""
    for j in range(start, start + cols):
        w = weights[j]
        weights[j] = a * w + b * _sgn(w)


@njit(cache=True, nogil=True)
def _geometry(neurons, bias):
    """Layer sizes with bias, where each layer's values start, where each weight matrix starts."""
    sizes = neurons + bias
    woff = np.zeros(neurons.shape[0], np.int64)
    for layer in range(1, neurons.shape[0]):
        woff[layer] = woff[layer - 1] + sizes[layer - 1] * neurons[layer]
    return sizes, _offsets(sizes), woff


@njit(cache=True, nogil=True)
def _offsets(sizes):
    offsets = np.zeros(sizes.shape[0] + 1, np.int64)
    for layer in range(sizes.shape[0]):
        offsets[layer + 1] = offsets[layer] + sizes[layer]
    return offsets


@njit(cache=True, nogil=True)
def _forward(
    weights, neurons, sizes, acts, woff, voff, vals, z, x, prep, alpha, t, stamp, reg_a, reg_b, lazy
):
    """One sample forward; with ``lazy``, stale rows of the first matrix are caught up first."""
    n0 = neurons[0]
    for i in range(n0):
        z[i] = x[i]
    if prep == PRE_PROPORTIONAL:
        top = z[0]
        for i in range(1, n0):
            top = max(top, z[i])
        if top != 0.0:
            for i in range(n0):
                z[i] = z[i] / top
    elif prep == PRE_MIDRANGE:
        top = z[0]
        bottom = z[0]
        for i in range(1, n0):
            top = max(top, z[i])
            bottom = min(bottom, z[i])
        mid = (top + bottom) / 2.0
        for i in range(n0):
            z[i] = z[i] - mid
    _think(acts[0], z, vals[voff[0] :], n0, sizes[0], alpha)
    if sizes[0] > n0:
        vals[voff[0] + n0] = 1.0
    for layer in range(1, neurons.shape[0]):
        cols = neurons[layer]
        rows = sizes[layer - 1]
        below = voff[layer - 1]
        w0 = woff[layer - 1]
        for j in range(cols):
            z[j] = 0.0
        for i in range(rows):
            v = vals[below + i]
            if v == 0.0:
                continue  # contributes nothing; a stale row may stay stale
            row = weights[w0 + i * cols : w0 + (i + 1) * cols]
            if lazy and layer == 1 and t > stamp[i]:
                a = reg_a[t - stamp[i]]
                b = reg_b[t - stamp[i]]
                stamp[i] = t
                for j in range(cols):
                    w = a * row[j] + b * _sgn(row[j])
                    row[j] = w
                    z[j] += v * w
            else:
                for j in range(cols):
                    z[j] += v * row[j]
        _think(acts[layer], z, vals[voff[layer] :], cols, sizes[layer], alpha)
        if sizes[layer] > cols:
            vals[voff[layer] + cols] = 1.0


@njit(cache=True, nogil=True)
def _target(labels, direct, r, out, n_out):
    if direct.shape[0] > 0:
        for j in range(n_out):
            out[j] = direct[r, j]
    else:
        for j in range(n_out):
            out[j] = 0.0
        out[labels[r]] = 1.0


@njit(cache=True, nogil=True)
def train_block(weights, neurons, bias, acts, inputs, labels, direct, rows, lr, lam, prep, alpha):
    """Online SGD over ``inputs[rows]`` in order, updating ``weights`` in place.

    Returns -1, or the position in ``rows`` of the first sample whose output was
    not finite (the weights have diverged; training stops there).
    """
    n_layers = neurons.shape[0]
    sizes, voff, woff = _geometry(neurons, bias)
    vals = np.empty(voff[n_layers])
    err = np.empty(voff[n_layers])
    z = np.empty(max(sizes.max(), 1))
    delta = np.empty(neurons.max())
    n_out = neurons[n_layers - 1]
    target = np.empty(n_out)
    count = rows.shape[0]
    # The closed form of k regularisation-only steps: A_k and B_k for k = 0 … count.
    stamp = np.zeros(sizes[0], np.int64)
    reg_a = np.ones(count + 1)
    reg_b = np.zeros(count + 1)
    growth = 2.0 * lr * lam
    if growth != 0.0:
        log_step = math.log1p(growth)
        for k in range(count + 1):
            reg_a[k] = math.exp(k * log_step)
            reg_b[k] = lr * lam * math.expm1(k * log_step) / growth
    cols1 = neurons[1]
    for t in range(count):
        r = rows[t]
        _forward(weights, neurons, sizes, acts, woff, voff, vals, z, inputs[r], prep, alpha,
                 t, stamp, reg_a, reg_b, True)  # fmt: skip
        out = voff[n_layers - 1]
        if not np.isfinite(vals[out : out + n_out]).all():
            for i in range(sizes[0]):
                if t - stamp[i] > 0:
                    _catch_up(weights, i * cols1, cols1, reg_a[t - stamp[i]], reg_b[t - stamp[i]])
            return t
        _target(labels, direct, r, target, n_out)
        for j in range(n_out):
            err[out + j] = vals[out + j] - target[j]
        for layer in range(n_layers - 1, 0, -1):
            cols = neurons[layer]
            here = voff[layer]
            for j in range(cols):
                delta[j] = err[here + j] * _derivative(acts[layer], vals[here + j], alpha)
            below = voff[layer - 1]
            w0 = woff[layer - 1]
            if layer >= 2:
                # The error below uses the weights before this sample's update.
                for i in range(neurons[layer - 1]):
                    s = 0.0
                    for j in range(cols):
                        s += delta[j] * weights[w0 + i * cols + j]
                    err[below + i] = s
            for i in range(sizes[layer - 1]):
                v = vals[below + i]
                if layer == 1:
                    if v == 0.0:
                        continue  # regularisation only: left pending
                    stamp[i] = t + 1
                row = weights[w0 + i * cols : w0 + (i + 1) * cols]
                for j in range(cols):
                    w = row[j]
                    row[j] = w - lr * (delta[j] * v - lam * (2.0 * w + _sgn(w)))
    for i in range(sizes[0]):
        k = count - stamp[i]
        if k > 0:
            _catch_up(weights, i * cols1, cols1, reg_a[k], reg_b[k])
    return -1


@njit(cache=True, nogil=True)
def test_block(weights, neurons, bias, acts, inputs, labels, direct, rows, prep, alpha):
    """Forward and check ``inputs[rows]``: returns (number correct, summed error)."""
    n_layers = neurons.shape[0]
    sizes, voff, woff = _geometry(neurons, bias)
    vals = np.empty(voff[n_layers])
    z = np.empty(max(sizes.max(), 1))
    n_out = neurons[n_layers - 1]
    target = np.empty(n_out)
    no_stamp = np.zeros(1, np.int64)
    no_reg = np.zeros(1)
    correct = 0
    error_sum = 0.0
    out = voff[n_layers - 1]
    for t in range(rows.shape[0]):
        r = rows[t]
        _forward(weights, neurons, sizes, acts, woff, voff, vals, z, inputs[r], prep, alpha,
                 0, no_stamp, no_reg, no_reg, False)  # fmt: skip
        _target(labels, direct, r, target, n_out)
        best = 0
        for j in range(1, n_out):
            if vals[out + j] > vals[out + best]:
                best = j
        if target[best] == 1.0:
            correct += 1
        for j in range(n_out):
            d = target[j] - vals[out + j]
            error_sum += 0.5 * d * d
    return correct, error_sum


test_block.__test__ = False  # a kernel, not a pytest test


def network_arrays(net: Connectome) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The layout as the kernels take it: neurons, bias flags (0/1), activation codes."""
    return layout_arrays(net.layout)


def layout_arrays(layout: Layout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``network_arrays`` of any network of ``layout``."""
    layers = layout.layers
    return (
        np.array([layer.neurons for layer in layers], np.int64),
        np.array([int(layer.bias) for layer in layers], np.int64),
        np.array([int(layer.activation) for layer in layers], np.int64),
    )


def _check_fit(net: Connectome, inputs: np.ndarray, targets, rows: np.ndarray) -> None:
    """The kernels do no bounds checks: refuse data that does not fit before they run."""
    layout = net.layout
    if inputs.ndim != 2 or inputs.shape[1] != layout.n_inputs:
        raise ValueError(f"inputs of shape {inputs.shape} do not fit {layout.n_inputs} input neurons")
    if not len(rows):
        return
    last = int(np.max(rows))
    if np.min(rows) < 0 or last >= len(inputs):
        raise ValueError("rows outside the data")
    if targets.is_direct:
        if targets.direct.shape[1] != layout.n_outputs or last >= len(targets.direct):
            raise ValueError(f"direct targets of shape {targets.direct.shape} do not fit the rows")
    elif last >= len(targets.labels) or not (
        0 <= targets.labels.min() <= targets.labels.max() < layout.n_outputs
    ):
        raise ValueError(f"labels must cover the rows and lie in [0, {layout.n_outputs})")


def train(net: Connectome, inputs: np.ndarray, targets, rows: np.ndarray, hyper: Hyper) -> int:
    """Train ``net`` in place on ``inputs[rows]``; -1, or where the output stopped being finite."""
    if hyper.lambda_ < 0:
        raise ValueError("the lazy regularisation needs lambda >= 0")
    _check_fit(net, inputs, targets, rows)
    return train_weights(net.weights, network_arrays(net), inputs, targets, np.asarray(rows, np.int64), hyper)


def test(net: Connectome, inputs: np.ndarray, targets, rows: np.ndarray, hyper: Hyper) -> tuple[int, float]:
    """Check ``inputs[rows]`` against ``net``: (number correct, summed error)."""
    _check_fit(net, inputs, targets, rows)
    return test_weights(net.weights, network_arrays(net), inputs, targets, np.asarray(rows, np.int64), hyper)


test.__test__ = False


def train_weights(
    weights: np.ndarray, layers: tuple, inputs: np.ndarray, targets, rows: np.ndarray, hyper: Hyper
) -> int:
    """``train_block`` on a flat weight buffer, ``layers`` as ``network_arrays`` gives them.

    Unchecked (``train`` checks): the caller guarantees that data, rows and weights fit.
    """
    return int(
        train_block(
            weights, *layers, inputs, targets.labels, targets.direct, rows, float(hyper.learning_rate),
            float(hyper.lambda_), int(hyper.preprocessing), float(hyper.elu_alpha),
        )
    )  # fmt: skip


def test_weights(
    weights: np.ndarray, layers: tuple, inputs: np.ndarray, targets, rows: np.ndarray, hyper: Hyper
) -> tuple[int, float]:
    """``test_block`` on a flat weight buffer (unchecked, as ``train_weights``): (correct, error sum)."""
    correct, error_sum = test_block(
        weights, *layers, inputs, targets.labels, targets.direct, rows, int(hyper.preprocessing),
        float(hyper.elu_alpha),
    )  # fmt: skip
    return int(correct), float(error_sum)


test_weights.__test__ = False
