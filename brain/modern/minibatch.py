"""Mini-batch training: the two BLAS products per layer, and one numba pass for the rest of it.

FAST PATH — the same numbers as ``forward.forward`` + ``gradients.backward`` +
``optimizers.optimizer_step``, the readable path (the tests hold the two equal).
What a mini-batch costs here beyond its matrix products:

- its rows are gathered, converted and pre-processed by one numba loop into a
  buffer allocated once (``inputs.gather_into``);
- every product writes into a preallocated matrix (``np.matmul(..., out=...)``);
- a hidden layer's bias and activation are one pass over its sums, in place (ELU and
  SELU: that pass also takes ``min(z, 0)``, numpy's vectorised float32 ``expm1`` —
  many times faster than a scalar one per element — exponentiates it, a second pass
  combines);
- the output layer's bias, activation, finiteness check, loss gradient (÷ batch
  size) and bias gradient are one pass; a hidden layer's delta and bias gradient one;
- the optimizer updates the float64 master weights and writes their float32 copy in
  the same pass (``optimizers.apply_update``).

The buffers live in a ``Workspace`` per thread (the thread executor trains replicas
side by side in one process), made by the first call for a layout, batch size and
precision, and reused by every later one.  Every constant is cast to the dtype of
the arrays first, as numpy casts a Python float meeting a float32 array.
"""

from __future__ import annotations

import math
import threading

import numpy as np
from numba import njit

from brain.activations import LEAKY_SLOPE, SELU_ALPHA, SELU_SCALE
from brain.kernels import ELU, IDENTITY, LEAKY, LOGISTIC, RELU, SELU, SOFTMAX, TANH
from brain.layout import Layout
from brain.modern.forward import matrices
from brain.modern.hyper import Modern
from brain.modern.inputs import gather_into
from brain.modern.optimizers import NO_COPY, apply_update, bias_corrections


@njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _activation(kind, z, alpha, one, zero, slope, scale, selu_alpha):
    """f(z) of an element-wise activation; a NaN stays NaN (divergence must reach the output).

    ELU and SELU as ``forward``'s ``max(z, 0) + α·expm1(min(z, 0))``, of which one term is 0.
    """
    if kind == LOGISTIC:
        return one / (one + math.exp(-z))
    if kind == TANH:
        return math.tanh(z)
    if kind == RELU:
        return zero if z <= zero else z
    if kind == LEAKY:
        return z if z >= zero else slope * z
    if kind == ELU:
        return z if z > zero else alpha * math.expm1(z)
    if kind == SELU:
        return scale * (z if z > zero else selu_alpha * math.expm1(z))
    return z  # Identity


@njit(cache=True, nogil=True, error_model="numpy")
def activate_rows(kind, z, bias, alpha):
    """``z = f(z + bias)`` in place, one sample per row; ``bias`` is the bias row or empty.

    The softmax is taken per row, ``exp(z − max z) / Σ``, as ``forward.activate`` does.
    """
    dtype = z.dtype.type
    one, zero, a = dtype(1), dtype(0), dtype(alpha)
    slope, scale, selu_alpha = dtype(LEAKY_SLOPE), dtype(SELU_SCALE), dtype(SELU_ALPHA)
    for r in range(z.shape[0]):
        row = z[r]
        for j in range(bias.shape[0]):
            row[j] += bias[j]
        if kind == SOFTMAX:
            top = row[0]
            for j in range(1, row.shape[0]):
                top = row[j] if row[j] > top else top
            total = zero
            for j in range(row.shape[0]):
                row[j] = math.exp(row[j] - top)
                total += row[j]
            for j in range(row.shape[0]):
                row[j] /= total
        elif kind != IDENTITY:
            for j in range(row.shape[0]):
                row[j] = _activation(kind, row[j], a, one, zero, slope, scale, selu_alpha)


@njit(cache=True, nogil=True, error_model="numpy")
def bias_and_negative(z, bias, negative):
    """``z += bias``, ``negative = min(z, 0)`` (NaN stays NaN): the exponential part's argument."""
    zero = z.dtype.type(0)
    for r in range(z.shape[0]):
        row, low = z[r], negative[r]
        for j in range(bias.shape[0]):
            row[j] += bias[j]
        for j in range(row.shape[0]):
            low[j] = zero if row[j] > zero else row[j]


@njit(cache=True, nogil=True, error_model="numpy")
def exponential_linear(kind, z, expm1_negative, alpha):
    """ELU: ``z = z if z > 0 else α·expm1(z)``; SELU the same with its α, times its scale.

    ``expm1_negative`` is ``expm1(min(z, 0))``, taken by numpy (a vectorised loop, many
    times faster than a scalar ``expm1`` per element).
    """
    dtype = z.dtype.type
    zero = dtype(0)
    scale, a = (dtype(SELU_SCALE), dtype(SELU_ALPHA)) if kind == SELU else (dtype(1), dtype(alpha))
    for r in range(z.shape[0]):
        row, e = z[r], expm1_negative[r]
        for j in range(row.shape[0]):
            row[j] = row[j] if row[j] > zero else a * e[j]
        if kind == SELU:
            for j in range(row.shape[0]):
                row[j] *= scale


def activate(kind: int, z: np.ndarray, bias: np.ndarray, alpha: float, scratch: np.ndarray) -> None:
    """``z = f(z + bias)`` in place (``scratch``: a spare matrix shaped like ``z``)."""
    if kind in (ELU, SELU):
        bias_and_negative(z, bias, scratch)
        np.expm1(scratch, out=scratch)
        exponential_linear(kind, z, scratch, alpha)
    else:
        activate_rows(kind, z, bias, alpha)


@njit(cache=True, nogil=True, error_model="numpy")
def through_rows(kind, a, e, alpha, grad_bias):
    """``e = J(a)ᵀ e`` in place: the error at the activations ``a`` moved to the incoming sums.

    As ``gradients.through_activation``: element-wise derivatives from the activated
    value (ELU and SELU below 0: ``y + α``), the softmax's full Jacobian per row.
    ``grad_bias``, when not empty, receives the column sums of the result (the
    gradient of the bias row feeding this layer), row after row as numpy sums axis 0.
    """
    dtype = a.dtype.type
    one, zero, alpha_ = dtype(1), dtype(0), dtype(alpha)
    slope, scale, selu_slope = dtype(LEAKY_SLOPE), dtype(SELU_SCALE), dtype(SELU_SCALE * SELU_ALPHA)
    for r in range(a.shape[0]):
        y, d = a[r], e[r]
        if kind == SOFTMAX:
            dot = zero
            for j in range(y.shape[0]):
                dot += d[j] * y[j]
            for j in range(y.shape[0]):
                d[j] = y[j] * (d[j] - dot)
        elif kind != IDENTITY:
            for j in range(y.shape[0]):
                d[j] = _derivative_times(kind, y[j], d[j], one, zero, alpha_, slope, scale, selu_slope)
        if grad_bias.shape[0] > 0:
            _add_row(grad_bias, d, r == 0)


@njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _derivative_times(kind, v, g, one, zero, alpha, slope, scale, selu_slope):
    """f'(z)·g from the activated value v = f(z), written as ``through_activation`` writes it."""
    if kind == LOGISTIC:
        return g * v * (one - v)
    if kind == TANH:
        return g * (one - v * v)
    if kind == RELU:
        return g * (one if v > zero else zero)
    if kind == LEAKY:
        return g if v > zero else slope * g
    if kind == ELU:
        return g if v > zero else g * (v + alpha)
    return scale * g if v > zero else g * (v + selu_slope)  # SELU


@njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _add_row(total, row, first):
    if first:
        total[:] = row
    else:
        for j in range(row.shape[0]):
            total[j] += row[j]


@njit(cache=True, nogil=True, error_model="numpy")
def output_rows(kind, z, bias, alpha, labels, direct, rows, cross_entropy, delta, grad_bias):
    """The output layer of a mini-batch in one call: y = f(z + bias) in ``z``, then its delta.

    Returns the first row whose output is not finite (``delta`` is then undefined), or
    -1 with ``delta = ∂L/∂z ÷ batch size`` and ``grad_bias`` (when not empty) its
    column sums.  The targets are the one-hot ``labels[rows]``, or ``direct[rows]``
    when ``direct`` has rows.  Cross-entropy after a softmax gives ``y·Σt − t``, after
    logistic outputs ``y − t``; the quadratic loss ``J(y)ᵀ (y − t)``.
    """
    activate_rows(kind, z, bias, alpha)
    for r in range(z.shape[0]):
        for j in range(z.shape[1]):
            if not math.isfinite(z[r, j]):
                return r
    dtype = z.dtype.type
    one, zero, size = dtype(1), dtype(0), dtype(z.shape[0])
    for r in range(z.shape[0]):
        y, d = z[r], delta[r]
        total = zero
        for j in range(y.shape[0]):
            t = dtype(direct[rows[r], j]) if direct.shape[0] > 0 else (one if labels[rows[r]] == j else zero)
            d[j] = t  # the target, until the next loop
            total += t
        softmax_entropy = cross_entropy and kind == SOFTMAX
        for j in range(y.shape[0]):
            d[j] = y[j] * total - d[j] if softmax_entropy else y[j] - d[j]
    if not cross_entropy:
        through_rows(kind, z, delta, alpha, grad_bias[:0])
    for r in range(z.shape[0]):
        d = delta[r]
        for j in range(d.shape[0]):
            d[j] /= size
        if grad_bias.shape[0] > 0:
            _add_row(grad_bias, d, r == 0)
    return -1


class Workspace:
    """Every buffer a mini-batch needs, for one layout, batch size and precision.

    ``values[l]`` holds layer l's activations (``values[0]`` the gathered inputs) and
    ``deltas[l]`` its ∂L/∂z (in the forward pass: scratch for the activation);
    ``grad`` is the flat gradient, ``work`` the float32 copy of the weights (float64
    training reads the master weights themselves).
    """

    def __init__(self, layout: Layout, minibatch: int, dtype: type) -> None:
        self.key = (layout, minibatch, dtype)
        self.layout, self.minibatch = layout, minibatch
        self.kinds = [int(layer.activation) for layer in layout.layers]
        self.values = [np.empty((minibatch, layer.neurons), dtype) for layer in layout.layers]
        self.deltas = [np.empty((minibatch, layer.neurons), dtype) for layer in layout.layers]
        self.grad = np.empty(layout.n_weights, dtype)
        self.empty = np.empty(0, dtype)
        self.grads_below, self.grad_biases = self.split(self.grad)
        self.work = np.empty(layout.n_weights, np.float32) if dtype is np.float32 else None

    def split(self, flat: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per weight matrix of ``flat``: the rows of the neurons below, and the bias row (or empty)."""
        below = self.layout.layers
        mats = matrices(flat, self.layout)
        return (
            [m[: layer.neurons] for layer, m in zip(below, mats, strict=False)],
            [m[layer.neurons] if layer.bias else self.empty for layer, m in zip(below, mats, strict=False)],
        )

    def rows(self, size: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """``values`` and ``deltas`` for a mini-batch of ``size`` rows (the last may be short)."""
        if size == self.minibatch:
            return self.values, self.deltas
        return [v[:size] for v in self.values], [d[:size] for d in self.deltas]


_local = threading.local()


def workspace(layout: Layout, minibatch: int, dtype: type) -> Workspace:
    """This thread's workspace for ``layout``, ``minibatch`` and ``dtype``: the last one, or a new one."""
    space = getattr(_local, "space", None)
    if space is None or space.key != (layout, minibatch, dtype):
        space = _local.space = Workspace(layout, minibatch, dtype)
    return space


def train_minibatches(
    weights, s1, s2, step, layout: Layout, inputs, targets, rows, hyper: Modern, update: tuple[float, ...]
) -> int:
    """Train ``weights`` (float64, in place) on ``inputs[rows]`` in mini-batches; see ``train.train_modern``.

    ``update`` holds the optimizer's scalars after its kind (``lr, λ1, λ2, μ, β1, β2,
    ε, ρ``).  Returns -1, or the position in ``rows`` of the first row whose output
    was not finite: its mini-batch is not applied.
    """
    space = workspace(layout, hyper.minibatch, hyper.dtype)
    if space.work is not None:
        np.copyto(space.work, weights, casting="same_kind")
    work = weights if space.work is None else space.work
    mats = space.split(work)
    copy32 = NO_COPY if space.work is None else space.work
    with np.errstate(over="ignore", invalid="ignore"):  # a non-finite output is reported, not warned
        for start in range(0, len(rows), hyper.minibatch):
            batch = rows[start : start + hyper.minibatch]
            values, deltas = space.rows(len(batch))
            gather_into(inputs, batch, values[0], int(hyper.preprocessing))
            bad = _forward(space, mats, values, deltas, targets, batch, hyper)
            if bad >= 0:
                return start + bad
            _backward(space, mats[0], values, deltas, hyper.elu_alpha)
            step[0] += 1
            apply_update(
                hyper.optimizer_code, weights, space.grad, s1, s2, copy32, 0, layout.n_weights,
                *update, *bias_corrections(hyper, int(step[0])),
            )  # fmt: skip
    return -1


def _forward(space: Workspace, mats, values, deltas, targets, batch, hyper: Modern) -> int:
    """Every layer's activations, the output's delta and its bias gradient; -1 or the first non-finite row."""
    weights_below, biases = mats
    kinds, alpha, last = space.kinds, hyper.elu_alpha, len(values) - 1
    if kinds[0] != IDENTITY:
        activate(kinds[0], values[0], space.empty, alpha, deltas[0])
    for layer in range(1, last):
        np.matmul(values[layer - 1], weights_below[layer - 1], out=values[layer])
        activate(kinds[layer], values[layer], biases[layer - 1], alpha, deltas[layer])
    np.matmul(values[last - 1], weights_below[last - 1], out=values[last])
    return output_rows(
        kinds[last], values[last], biases[last - 1], alpha, targets.labels, targets.direct, batch,
        hyper.loss == "crossentropy", deltas[last], space.grad_biases[last - 1],
    )  # fmt: skip


def _backward(space: Workspace, weights_below, values, deltas, alpha: float) -> None:
    """From the output's delta down: each matrix's gradient, each hidden layer's delta and bias gradient."""
    for layer in range(len(values) - 1, 0, -1):
        np.matmul(values[layer - 1].T, deltas[layer], out=space.grads_below[layer - 1])
        if layer > 1:
            np.matmul(deltas[layer], weights_below[layer - 1].T, out=deltas[layer - 1])
            through_rows(space.kinds[layer - 1], values[layer - 1], deltas[layer - 1], alpha,
                         space.grad_biases[layer - 2])  # fmt: skip
