"""Online training (one update per sample) with the modern math, compiled with numba.

FAST PATH — the same numbers as ``brain.modern.forward``/``gradients`` with a
mini-batch of one (the tests hold the two equal), without numpy's per-call cost,
which would dominate at one sample per step.  Always float64.

Per sample: forward, then the whole backward pass with the weights of that
forward pass, then one optimizer step over every weight.  For SGD and AdaGrad
without regularisation, a weight whose gradient is 0 does not move, so the rows of
inputs that are 0 (four fifths of an MNIST image) are skipped; every other
optimizer (and any regularisation) moves every weight on every sample, which makes
online training with them several times slower than with SGD.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from brain.kernels import SOFTMAX, _derivative, _think
from brain.modern.inputs import prepare_row
from brain.modern.optimizers import ADAGRAD, SGD, apply_update

# The thesis kernels' activation divides by the layer size; here the divisor is 1 (exact).
NO_NORMALISATION = 1


@njit(cache=True, nogil=True)
def _through(kind, a, e, out, n, alpha):
    """out[:n] = J(a)ᵀ e: the error at the activations moved to the incoming sums.

    The element-wise derivatives from the activated value are the thesis kernels'
    (they are the textbook ones); only the softmax needs its full Jacobian here.
    """
    if kind == SOFTMAX:
        dot = 0.0
        for k in range(n):
            dot += e[k] * a[k]
        for j in range(n):
            out[j] = a[j] * (e[j] - dot)
        return
    for j in range(n):
        out[j] = e[j] * _derivative(kind, a[j], alpha)


@njit(cache=True, nogil=True)
def online_block(
    weights, neurons, bias, acts, inputs, labels, direct, rows, cross_entropy, prep, alpha,
    kind, s1, s2, step, lr, l1, l2, mu, b1, b2, eps, rho,
):  # fmt: skip
    """Train ``weights`` in place on ``inputs[rows]`` in order, one optimizer step per sample.

    Returns -1, or the position in ``rows`` of the first sample whose output was not
    finite (training stops before that sample's update).
    """
    n_layers = neurons.shape[0]
    voff = np.zeros(n_layers + 1, np.int64)
    woff = np.zeros(n_layers, np.int64)
    for layer in range(n_layers):
        voff[layer + 1] = voff[layer] + neurons[layer]
    for layer in range(1, n_layers):
        woff[layer] = woff[layer - 1] + (neurons[layer - 1] + bias[layer - 1]) * neurons[layer]
    vals = np.empty(voff[n_layers])
    delta = np.empty(voff[n_layers])
    z = np.empty(neurons.max())
    e = np.empty(neurons.max())
    target = np.empty(neurons[n_layers - 1])
    grad = np.zeros(weights.shape[0])
    no_copy = np.empty(0, np.float32)
    n_out = neurons[n_layers - 1]
    out = voff[n_layers - 1]
    out_kind = acts[n_layers - 1]
    skip_zero_rows = kind in (SGD, ADAGRAD) and l1 == 0.0 and l2 == 0.0
    plain_sgd = kind == SGD and skip_zero_rows
    for position in range(rows.shape[0]):
        r = rows[position]
        prepare_row(inputs[r], z[: neurons[0]], prep)
        _think(acts[0], z, vals[0:], neurons[0], NO_NORMALISATION, alpha)
        for layer in range(1, n_layers):
            cols, n_below, below, w0 = neurons[layer], neurons[layer - 1], voff[layer - 1], woff[layer - 1]
            for j in range(cols):
                z[j] = weights[w0 + n_below * cols + j] if bias[layer - 1] else 0.0
            for i in range(n_below):
                v = vals[below + i]
                if v != 0.0:
                    for j in range(cols):
                        z[j] += v * weights[w0 + i * cols + j]
            _think(acts[layer], z, vals[voff[layer] :], cols, NO_NORMALISATION, alpha)
        for j in range(n_out):
            if not math.isfinite(vals[out + j]):
                return position
        # The output delta: e = y − t, through the activation (quadratic) or as is (cross-entropy).
        target_sum = 0.0
        for j in range(n_out):
            target[j] = direct[r, j] if direct.shape[0] > 0 else (1.0 if labels[r] == j else 0.0)
            target_sum += target[j]
            e[j] = vals[out + j] - target[j]
        if cross_entropy:
            for j in range(n_out):
                # y·Σt − t for a softmax; y − t for logistic outputs.
                if out_kind == SOFTMAX:
                    delta[out + j] = vals[out + j] * target_sum - target[j]
                else:
                    delta[out + j] = e[j]
        else:
            _through(out_kind, vals[out:], e, delta[out:], n_out, alpha)
        for layer in range(n_layers - 1, 1, -1):
            cols, n_below, w0 = neurons[layer], neurons[layer - 1], woff[layer - 1]
            here, below = voff[layer], voff[layer - 1]
            for i in range(n_below):
                s = 0.0
                for j in range(cols):
                    s += delta[here + j] * weights[w0 + i * cols + j]
                e[i] = s
            _through(acts[layer - 1], vals[below:], e, delta[below:], n_below, alpha)
        step[0] += 1
        c1 = 1.0 - b1 ** step[0]
        c2 = 1.0 - b2 ** step[0]
        c1n = 1.0 - b1 ** (step[0] + 1)
        for layer in range(1, n_layers):
            cols, n_below, w0 = neurons[layer], neurons[layer - 1], woff[layer - 1]
            here, below = voff[layer], voff[layer - 1]
            for i in range(n_below + bias[layer - 1]):
                v = vals[below + i] if i < n_below else 1.0
                if v == 0.0 and skip_zero_rows:
                    continue
                start = w0 + i * cols
                if plain_sgd:
                    # The common case without the call: w −= lr·v·delta, as apply_update would.
                    for j in range(cols):
                        weights[start + j] -= lr * (v * delta[here + j])
                    continue
                for j in range(cols):
                    grad[start + j] = v * delta[here + j]
                if skip_zero_rows:
                    apply_update(
                        kind, weights, grad, s1, s2, no_copy, start, start + cols,
                        lr, l1, l2, mu, b1, b2, eps, rho, c1, c2, c1n,
                    )  # fmt: skip
        if not skip_zero_rows:
            apply_update(
                kind, weights, grad, s1, s2, no_copy, 0, weights.shape[0],
                lr, l1, l2, mu, b1, b2, eps, rho, c1, c2, c1n,
            )  # fmt: skip
    return -1
