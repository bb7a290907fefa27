"""The thesis math, plainly: one sample at a time, as the equations of the spec read.

This is the readable reference a student checks against
``shared/spec/thesis-semantics.md``; it is slow on purpose.  ``brain.kernels``
computes the same numbers fast, and the tests hold the two equal.

Notation: ``values[l]`` are the activated, normalised neuron values of layer ``l``
(bias neuron last, fixed at 1); ``W[l]`` maps layer ``l`` to layer ``l + 1``.
"""

from __future__ import annotations

import numpy as np

from brain.activations import activate, derivative
from brain.connectome import Connectome
from brain.hyper import Hyper
from brain.preprocessing import preprocess


def target_vector(targets, row: int, n_outputs: int) -> np.ndarray:
    """The target of sample ``row``: one-hot of its class ("index") or its row ("direct")."""
    if targets.is_direct:
        return np.asarray(targets.direct[row], dtype=np.float64)
    t = np.zeros(n_outputs)
    t[int(targets.labels[row])] = 1.0
    return t


def forward(net: Connectome, x: np.ndarray, hyper: Hyper) -> list[np.ndarray]:
    """Run one sample through the network; returns every layer's values (with bias neurons).

    Each layer "thinks": its incoming sums are divided by the layer's size
    including its bias neuron, the activation is applied, and the bias is set to 1.
    """
    values = []
    incoming = preprocess(hyper.preprocessing, x)
    for index, layer in enumerate(net.layout.layers):
        if index > 0:
            incoming = values[-1] @ net.matrices[index - 1]
        y = activate(layer.activation, incoming / layer.size, hyper.elu_alpha)
        if layer.bias:
            y = np.append(y, 1.0)
        values.append(y)
    return values


def backward_update(net: Connectome, values: list[np.ndarray], target: np.ndarray, hyper: Hyper) -> None:
    """Back-propagate one sample's error and update every weight in place (online SGD).

    error = output - target; per layer from the top: delta = error * f'(y);
    the error below uses the weights *before* this update; then
    w <- w - lr * (delta_j * y_i - lambda * (2w + sgn w)) — the program's sign of
    the elastic-net term, which grows the weights instead of decaying them.
    """
    layers = net.layout.layers
    lr, lam = hyper.learning_rate, hyper.lambda_
    error = values[-1] - target
    for index in range(len(layers) - 1, 0, -1):
        layer = layers[index]
        y = values[index][: layer.neurons]
        delta = error * derivative(layer.activation, y, hyper.elu_alpha)
        w = net.matrices[index - 1]
        below = values[index - 1]
        error = (w @ delta)[: layers[index - 1].neurons]
        gradient = np.outer(below, delta)
        w -= lr * (gradient - lam * (2.0 * w + np.sign(w)))


def check(output: np.ndarray, target: np.ndarray) -> tuple[bool, float]:
    """Whether the first index of the largest output is a target of 1, and the sample's error sum."""
    predicted = int(np.argmax(output))
    return bool(target[predicted] == 1.0), float(np.sum(0.5 * (target - output) ** 2))


def train_rows(net: Connectome, inputs: np.ndarray, targets, rows, hyper: Hyper) -> None:
    """Train on ``inputs[rows]`` in order, one sample at a time."""
    for row in rows:
        values = forward(net, inputs[row], hyper)
        backward_update(net, values, target_vector(targets, row, net.layout.n_outputs), hyper)


def test_rows(net: Connectome, inputs: np.ndarray, targets, rows, hyper: Hyper) -> tuple[int, float]:
    """Forward and check ``inputs[rows]``: the number correct and the summed error."""
    correct, error_sum = 0, 0.0
    for row in rows:
        output = forward(net, inputs[row], hyper)[-1]
        ok, err = check(output, target_vector(targets, row, net.layout.n_outputs))
        correct += ok
        error_sum += err
    return correct, error_sum


test_rows.__test__ = False  # a library function, not a pytest test
