"""The modern forward pass over a batch of samples, and the loss it is trained on.

Textbook math, unlike the thesis': no ÷ layer-size normalisation; a layer's
incoming sum is ``z = a_below @ W[:n_below] + W[n_below]`` (the bias row, when the
layer below has a bias neuron); its activation is ``a = f(z)``.  Rows are samples,
so one forward pass over a mini-batch is one BLAS matrix product per layer.

Every function keeps the dtype it is given (float32 in, float32 out).
"""

from __future__ import annotations

import numpy as np

from brain.activations import LEAKY_SLOPE, SELU_ALPHA, SELU_SCALE, Activation
from brain.layout import Layout
from brain.modern.hyper import Modern

TEST_CHUNK = 2000  # rows per forward pass when testing: big enough for BLAS, small for memory


def matrices(weights: np.ndarray, layout: Layout) -> tuple[np.ndarray, ...]:
    """Views of the flat buffer, one ``(rows below incl. bias, neurons above)`` matrix per layer pair."""
    offsets = layout.weight_offsets
    return tuple(
        weights[start:stop].reshape(shape)
        for start, stop, shape in zip(offsets[:-1], offsets[1:], layout.weight_shapes, strict=True)
    )


def activate(kind: Activation, z: np.ndarray, elu_alpha: float) -> np.ndarray:
    """f(z) for a batch (rows are samples); softmax is taken per row."""
    if kind == Activation.Identity:
        return z
    if kind == Activation.Logistic:
        with np.errstate(over="ignore"):
            return 1 / (1 + np.exp(-z))
    if kind == Activation.TanH:
        return np.tanh(z)
    if kind == Activation.ReLU:
        return np.maximum(z, 0)
    if kind == Activation.LeakyReLU:
        return np.where(z >= 0, z, LEAKY_SLOPE * z)
    if kind == Activation.ELU:
        return _positive_plus_exponential(z, elu_alpha)
    if kind == Activation.SELU:
        return SELU_SCALE * _positive_plus_exponential(z, SELU_ALPHA)
    if kind == Activation.SoftMax:
        e = np.exp(z - z.max(axis=1, keepdims=True))
        e /= e.sum(axis=1, keepdims=True)
        return e
    raise ValueError(kind)


def _positive_plus_exponential(z: np.ndarray, alpha: float) -> np.ndarray:
    """``max(z, 0) + alpha·(e^min(z, 0) − 1)``: z where z > 0, else alpha·(e^z − 1).

    The same numbers as ``np.where(z > 0, z, alpha·expm1(z))`` (one of the two terms
    is exactly 0), without the overflow of expm1 for large z and in a third of the time.
    """
    negative = np.minimum(z, 0)
    np.expm1(negative, out=negative)
    negative *= alpha
    out = np.maximum(z, 0)
    out += negative
    return out


def forward(mats: tuple[np.ndarray, ...], layout: Layout, x: np.ndarray, hyper: Modern) -> list[np.ndarray]:
    """Every layer's activations for the batch ``x`` (pre-processed), without bias columns.

    ``mats`` are the weight matrices in the dtype of ``x``.  The input layer's own
    activation is applied to the inputs (Identity in every usual network).
    """
    a = activate(layout.layers[0].activation, x, hyper.elu_alpha)
    values = [a]
    for below, layer, w in zip(layout.layers[:-1], layout.layers[1:], mats, strict=True):
        z = a @ w[: below.neurons]
        if below.bias:
            z += w[below.neurons]
        a = activate(layer.activation, z, hyper.elu_alpha)
        values.append(a)
    return values


def loss(output: np.ndarray, target: np.ndarray, kind: Activation, hyper: Modern) -> float:
    """The data term of the loss, averaged over the batch's samples.

    Quadratic: ``½ Σ (y − t)²``.  Cross-entropy: ``−Σ t log y`` after a softmax,
    ``−Σ [t log y + (1 − t) log(1 − y)]`` after logistic outputs (one binary
    cross-entropy per output neuron).  Raises ``ValueError`` for cross-entropy after
    any other output activation.
    """
    y, t = np.asarray(output, np.float64), np.asarray(target, np.float64)
    if hyper.loss == "quadratic":
        total = 0.5 * np.sum((y - t) ** 2)
    elif kind == Activation.SoftMax:
        total = -np.sum(t * np.log(y))
    elif kind == Activation.Logistic:
        total = -np.sum(t * np.log(y) + (1 - t) * np.log1p(-y))
    else:
        raise ValueError(f"cross-entropy needs a SoftMax or Logistic output layer, not {kind.name}")
    return float(total / len(y))


def regularisation(weights: np.ndarray, hyper: Modern) -> float:
    """``lambda_l2·Σw² + lambda_l1·Σ|w|`` over every weight, biases included."""
    return float(hyper.lambda_l2 * np.sum(weights * weights) + hyper.lambda_l1 * np.sum(np.abs(weights)))


def objective(weights: np.ndarray, layout: Layout, x: np.ndarray, target: np.ndarray, hyper: Modern) -> float:
    """What training minimises: the mean loss over the batch plus the regularisation."""
    output = forward(matrices(weights, layout), layout, x, hyper)[-1]
    return loss(output, target, layout.layers[-1].activation, hyper) + regularisation(weights, hyper)


def one_hot(targets, rows: np.ndarray, n_outputs: int, dtype: type) -> np.ndarray:
    """The targets of ``rows`` as a ``(len(rows), n_outputs)`` matrix: one-hot classes or direct values."""
    if targets.is_direct:
        return np.asarray(targets.direct[rows], dtype=dtype)
    t = np.zeros((len(rows), n_outputs), dtype)
    t[np.arange(len(rows)), targets.labels[rows]] = 1
    return t
