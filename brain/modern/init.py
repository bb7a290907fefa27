"""Initial weights, written into one flat float64 buffer from a seeded generator.

| init | weights of a matrix with fan_in inputs, fan_out outputs | biases |
| --- | --- | --- |
| Uniform | uniform in [low, high] (the thesis' rule; the same numbers as ``Connectome.uniform``) | same |
| He | normal, variance 2 / fan_in (for ReLU-like layers) | 0 |
| Glorot | uniform in ±√(6 / (fan_in + fan_out)), variance 2 / (fan_in + fan_out) | 0 |
| LeCun | normal, variance 1 / fan_in (for SELU: self-normalising networks) | 0 |

fan_in counts the neurons of the layer below without its bias neuron.
"""

from __future__ import annotations

import numpy as np

from brain.layout import Layout
from brain.modern.forward import matrices
from brain.vocabulary import Vocabulary


class Init(Vocabulary):
    """How the initial weights are drawn (the table above)."""

    UNIFORM = "Uniform"
    HE = "He"
    GLOROT = "Glorot"
    LECUN = "LeCun"


def initial_weights(
    layout: Layout, init: Init | str, seed: int, low: float = -1.0, high: float = 1.0
) -> np.ndarray:
    """A fresh flat weight buffer for ``layout``; ``low``/``high`` matter for Uniform only.

    Raises ``ValueError`` for an unknown ``init`` (a member, or its name in any letter case).
    """
    kind = Init(init)
    rng = np.random.default_rng(seed)
    if kind is Init.UNIFORM:
        return rng.uniform(low, high, layout.n_weights)
    weights = np.zeros(layout.n_weights)
    for below, above, w in zip(layout.layers[:-1], layout.layers[1:], matrices(weights, layout), strict=True):
        fan_in, fan_out = below.neurons, above.neurons
        shape = (fan_in, fan_out)
        if kind is Init.HE:
            w[:fan_in] = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        elif kind is Init.LECUN:
            w[:fan_in] = rng.normal(0.0, np.sqrt(1.0 / fan_in), shape)
        else:
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            w[:fan_in] = rng.uniform(-limit, limit, shape)
    return weights
