"""Activation functions and the derivative the thesis program took from the activated value.

The derivative is a function of ``y = f(x)``, not of ``x``: that is how the Go
program computed it, and the softmax derivative is the diagonal ``(1 - y) y`` only.
These are the readable definitions; ``brain.kernels`` holds the fast copies.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

LEAKY_SLOPE = 0.01
DEFAULT_ELU_ALPHA = 0.5
# The fixed point constants of self-normalising networks (Klambauer et al. 2017).
SELU_SCALE = 1.0507009873554805
SELU_ALPHA = 1.6732632423543772


class Activation(IntEnum):
    """Activation codes; the names are the spellings of network files."""

    Identity = 0
    Logistic = 1
    TanH = 2
    ReLU = 3
    LeakyReLU = 4
    ELU = 5
    SoftMax = 6
    SELU = 7  # not in the thesis: its future work's self-normalising networks

    @classmethod
    def parse(cls, text: str) -> Activation:
        """Case-insensitive lookup; raises ``KeyError`` for an unknown name."""
        wanted = text.strip().lower()
        for member in cls:
            if member.name.lower() == wanted:
                return member
        raise KeyError(text)


def activate(kind: Activation, x: np.ndarray, elu_alpha: float = DEFAULT_ELU_ALPHA) -> np.ndarray:
    """f(x) for a whole layer (softmax needs the whole layer)."""
    if kind == Activation.Identity:
        return x.copy()
    if kind == Activation.Logistic:
        return 1.0 / (1.0 + np.exp(-x))
    if kind == Activation.TanH:
        return np.tanh(x)
    if kind == Activation.ReLU:
        return np.where(x > 0, x, 0.0)
    if kind == Activation.LeakyReLU:
        return np.where(x >= 0, x, LEAKY_SLOPE * x)
    if kind == Activation.ELU:
        return np.where(x >= 0, x, elu_alpha * (np.exp(np.minimum(x, 0.0)) - 1.0))
    if kind == Activation.SoftMax:
        e = np.exp(x - x.max())
        return e / e.sum()
    if kind == Activation.SELU:
        return SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * (np.exp(np.minimum(x, 0.0)) - 1.0))
    raise ValueError(kind)


def derivative(kind: Activation, y: np.ndarray, elu_alpha: float = DEFAULT_ELU_ALPHA) -> np.ndarray:
    """f'(x) as the thesis program computed it, from the activated value y."""
    if kind == Activation.Identity:
        return np.ones_like(y)
    if kind in (Activation.Logistic, Activation.SoftMax):
        return (1.0 - y) * y
    if kind == Activation.TanH:
        return 1.0 - y * y
    if kind == Activation.ReLU:
        return np.where(y > 0, 1.0, 0.0)
    if kind == Activation.LeakyReLU:
        return np.where(y > 0, 1.0, LEAKY_SLOPE)
    if kind == Activation.ELU:
        return np.where(y > 0, 1.0, y + elu_alpha)
    if kind == Activation.SELU:
        # scale·alpha·e^x = y + scale·alpha below 0
        return np.where(y > 0, SELU_SCALE, y + SELU_SCALE * SELU_ALPHA)
    raise ValueError(kind)
