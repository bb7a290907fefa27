"""Every hyper-parameter of the modern math, in one frozen dataclass.

Names are lower case here (``"adam"``, ``"crossentropy"``); ``Modern`` accepts any
letter case and stores the lower-case spelling, so the batch file's ``Adam`` and
``CrossEntropy`` pass straight through.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brain.activations import DEFAULT_ELU_ALPHA
from brain.preprocessing import PreProcessing

LOSSES = ("quadratic", "crossentropy")
PRECISIONS = ("float64", "float32")

# Optimizer name -> the names of its state arrays, each shaped like the weights.
OPTIMIZER_STATE: dict[str, tuple[str, ...]] = {
    "sgd": (),
    "momentum": ("velocity",),
    "nesterov": ("velocity",),
    "adagrad": ("sum_squares",),
    "rmsprop": ("mean_square",),
    "adam": ("m", "v"),
    "nadam": ("m", "v"),
    "adadelta": ("mean_square", "mean_update"),
}
OPTIMIZERS = tuple(OPTIMIZER_STATE)


def _one_of(value: str, allowed: tuple[str, ...], what: str) -> str:
    lowered = str(value).lower()
    if lowered not in allowed:
        raise ValueError(f"unknown {what} {value!r}; allowed: {', '.join(allowed)}")
    return lowered


@dataclass(frozen=True)
class Modern:
    """The modern (textbook) training math.

    ``minibatch`` 1 is online training (one update per sample).  ``precision``
    float32 computes the forward and backward products in float32; the master
    weights and the optimizer state stay float64.  ``lambda_l2`` and ``lambda_l1``
    add ``lambda_l2·Σw² + lambda_l1·Σ|w|`` to the loss (biases included: they are
    ordinary weights), so the gradient gains ``2·lambda_l2·w + lambda_l1·sgn w``.

    Raises ``ValueError`` for an unknown name or a value out of range (the batch
    parser has already told the user; here it is a bug).
    """

    learning_rate: float = 0.001
    loss: str = "crossentropy"
    lambda_l1: float = 0.0
    lambda_l2: float = 0.0
    optimizer: str = "adam"
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    rho: float = 0.95
    minibatch: int = 100
    precision: str = "float64"
    preprocessing: PreProcessing = PreProcessing.Proportional
    elu_alpha: float = DEFAULT_ELU_ALPHA

    def __post_init__(self) -> None:
        object.__setattr__(self, "loss", _one_of(self.loss, LOSSES, "loss"))
        object.__setattr__(self, "optimizer", _one_of(self.optimizer, OPTIMIZERS, "optimizer"))
        object.__setattr__(self, "precision", _one_of(self.precision, PRECISIONS, "precision"))
        if self.learning_rate < 0 or self.lambda_l1 < 0 or self.lambda_l2 < 0:
            raise ValueError("learning rate and lambdas must be ≥ 0")
        for name in ("momentum", "beta1", "beta2", "rho"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.epsilon <= 0:
            raise ValueError(f"epsilon must be > 0, got {self.epsilon}")
        if self.minibatch < 1:
            raise ValueError(f"minibatch must be ≥ 1, got {self.minibatch}")

    @property
    def dtype(self) -> type:
        """The dtype of the forward and backward products."""
        return np.float32 if self.precision == "float32" else np.float64

    @property
    def optimizer_code(self) -> int:
        return OPTIMIZERS.index(self.optimizer)


def optimizer_state_names(optimizer: str) -> tuple[str, ...]:
    """The state arrays ``optimizer`` keeps, e.g. ``("m", "v")`` for Adam, ``()`` for SGD."""
    return OPTIMIZER_STATE[_one_of(optimizer, OPTIMIZERS, "optimizer")]


def new_state(optimizer: str, n_weights: int) -> dict[str, np.ndarray]:
    """Fresh (all-zero) optimizer state: one float64 array of ``n_weights`` per name."""
    return {name: np.zeros(n_weights) for name in optimizer_state_names(optimizer)}
