"""Back-propagation of the modern loss over a batch: the gradient of every weight.

For a layer with activations ``a`` and the loss's derivative ``e = ∂L/∂a``, the
derivative with respect to its incoming sums is ``delta = J(a)ᵀ e``: ``e · f'(z)``
for an element-wise activation, and for a softmax the full Jacobian
``delta = a · (e − Σ_k e_k a_k)``.  At the output, cross-entropy after a softmax
gives ``delta = y·Σt − t`` (``y − t`` for one-hot targets) and after logistic
outputs ``y − t``.  Then ``∂L/∂W = a_belowᵀ · delta`` (the bias row: ``Σ delta``)
and ``e_below = delta · W[:n_below]ᵀ``, all divided by the batch size so that the
gradient is that of the *mean* loss.  The regularisation's gradient is added by the
optimizer (``brain.modern.optimizers``), on the float64 master weights.
"""

from __future__ import annotations

import numpy as np

from brain.activations import LEAKY_SLOPE, SELU_ALPHA, SELU_SCALE, Activation
from brain.layout import Layout
from brain.modern.forward import forward, matrices
from brain.modern.hyper import Modern


def through_activation(kind: Activation, a: np.ndarray, e: np.ndarray, elu_alpha: float) -> np.ndarray:
    """``delta = J(a)ᵀ e``: the error ``e`` at the activations ``a`` moved to the incoming sums.

    Element-wise derivatives are taken from the activated value, exactly: for ELU
    and SELU below 0, ``f'(z) = y + alpha`` (times the scale for SELU).
    """
    if kind == Activation.Identity:
        return e
    if kind == Activation.Logistic:
        return e * a * (1 - a)
    if kind == Activation.TanH:
        return e * (1 - a * a)
    if kind == Activation.ReLU:
        return e * (a > 0)
    if kind == Activation.LeakyReLU:
        return np.where(a > 0, e, LEAKY_SLOPE * e)
    if kind == Activation.ELU:
        return np.where(a > 0, e, e * (a + elu_alpha))
    if kind == Activation.SELU:
        return np.where(a > 0, SELU_SCALE * e, e * (a + SELU_SCALE * SELU_ALPHA))
    if kind == Activation.SoftMax:
        return a * (e - np.sum(e * a, axis=1, keepdims=True))
    raise ValueError(kind)


def output_delta(kind: Activation, y: np.ndarray, t: np.ndarray, hyper: Modern) -> np.ndarray:
    """``∂L/∂z`` at the output layer for one sample per row (not yet divided by the batch size)."""
    if hyper.loss == "quadratic":
        return through_activation(kind, y, y - t, hyper.elu_alpha)
    if kind == Activation.SoftMax:
        # −Σ t log softmax(z) has gradient y·Σt − t; for one-hot targets, y − t.
        return y * t.sum(axis=1, keepdims=True) - t
    if kind == Activation.Logistic:
        return y - t
    raise ValueError(f"cross-entropy needs a SoftMax or Logistic output layer, not {kind.name}")


def backward(
    mats: tuple[np.ndarray, ...],
    layout: Layout,
    values: list[np.ndarray],
    target: np.ndarray,
    hyper: Modern,
    grads: tuple[np.ndarray, ...],
) -> None:
    """Fill ``grads`` (matrices shaped like ``mats``) with the gradient of the batch's mean loss.

    ``values`` are the forward pass's activations; the errors passed down use the
    weights ``mats`` as they were in that forward pass.
    """
    layers = layout.layers
    delta = output_delta(layers[-1].activation, values[-1], target, hyper)
    delta /= len(target)
    for index in range(len(layers) - 1, 0, -1):
        below, w, g = layers[index - 1], mats[index - 1], grads[index - 1]
        n = below.neurons
        np.matmul(values[index - 1].T, delta, out=g[:n])
        if below.bias:
            delta.sum(axis=0, out=g[n])
        if index > 1:
            e = delta @ w[:n].T
            delta = through_activation(below.activation, values[index - 1], e, hyper.elu_alpha)


def gradient(
    weights: np.ndarray, layout: Layout, x: np.ndarray, target: np.ndarray, hyper: Modern
) -> np.ndarray:
    """The gradient of the batch's mean loss (without regularisation) as a flat buffer like ``weights``.

    The readable entry point for tests; training reuses its buffers through
    ``forward`` and ``backward`` directly.
    """
    mats = matrices(weights, layout)
    flat = np.empty_like(weights)
    backward(mats, layout, forward(mats, layout, x, hyper), target, hyper, matrices(flat, layout))
    return flat


def regularisation_gradient(weights: np.ndarray, hyper: Modern) -> np.ndarray:
    """``2·lambda_l2·w + lambda_l1·sgn w``: weight decay, pulling every weight towards 0."""
    return 2 * hyper.lambda_l2 * weights + hyper.lambda_l1 * np.sign(weights)
