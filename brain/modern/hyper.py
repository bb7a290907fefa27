"""Every hyper-parameter of the modern math, in one frozen dataclass, and their vocabularies.

``Modern`` takes a member or its name in any letter case (``"adam"``, ``Optimizer.ADAM``)
and keeps the member.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brain.activations import DEFAULT_ELU_ALPHA
from brain.preprocessing import PreProcessing
from brain.vocabulary import Vocabulary


class Loss(Vocabulary):
    """What training minimises (``brain.modern.forward.loss``)."""

    QUADRATIC = "Quadratic"
    CROSS_ENTROPY = "CrossEntropy"


class Optimizer(Vocabulary):
    """How a gradient changes the weights (``brain.modern.optimizers``); the order is the kernels' code."""

    SGD = "SGD"
    MOMENTUM = "Momentum"
    NESTEROV = "Nesterov"
    ADAGRAD = "AdaGrad"
    RMSPROP = "RMSProp"
    ADAM = "Adam"
    NADAM = "NAdam"
    ADADELTA = "AdaDelta"


class Precision(Vocabulary):
    """The dtype of the forward and backward products of a mini-batch."""

    FLOAT64 = "float64"
    FLOAT32 = "float32"


class Update(Vocabulary):
    """Online: one step per line; MiniBatch: one per ``Modern.minibatch`` lines."""

    ONLINE = "Online"
    MINI_BATCH = "MiniBatch"


# The names of each optimizer's state arrays, each shaped like the weights.
OPTIMIZER_STATE: dict[Optimizer, tuple[str, ...]] = {
    Optimizer.SGD: (),
    Optimizer.MOMENTUM: ("velocity",),
    Optimizer.NESTEROV: ("velocity",),
    Optimizer.ADAGRAD: ("sum_squares",),
    Optimizer.RMSPROP: ("mean_square",),
    Optimizer.ADAM: ("m", "v"),
    Optimizer.NADAM: ("m", "v"),
    Optimizer.ADADELTA: ("mean_square", "mean_update"),
}
OPTIMIZERS = tuple(Optimizer)


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

    ``loss`` is kept as its lower-case spelling (``"crossentropy"``): that is what
    ``forward``, ``gradients`` and ``train`` compare it with.
    """

    learning_rate: float = 0.001
    loss: str = "crossentropy"  # a Loss or its name; kept lower-case, see above
    lambda_l1: float = 0.0
    lambda_l2: float = 0.0
    optimizer: Optimizer = Optimizer.ADAM
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    rho: float = 0.95
    minibatch: int = 100
    precision: Precision = Precision.FLOAT64
    preprocessing: PreProcessing = PreProcessing.Proportional
    elu_alpha: float = DEFAULT_ELU_ALPHA

    def __post_init__(self) -> None:
        object.__setattr__(self, "loss", Loss(self.loss).lower())
        object.__setattr__(self, "optimizer", Optimizer(self.optimizer))
        object.__setattr__(self, "precision", Precision(self.precision))
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
        return np.float32 if self.precision is Precision.FLOAT32 else np.float64

    @property
    def optimizer_code(self) -> int:
        return OPTIMIZERS.index(self.optimizer)


def optimizer_state_names(optimizer: Optimizer | str) -> tuple[str, ...]:
    """The state arrays ``optimizer`` keeps, e.g. ``("m", "v")`` for Adam, ``()`` for SGD."""
    return OPTIMIZER_STATE[Optimizer(optimizer)]


def new_state(optimizer: Optimizer | str, n_weights: int) -> dict[str, np.ndarray]:
    """Fresh (all-zero) optimizer state: one float64 array of ``n_weights`` per name."""
    return {name: np.zeros(n_weights) for name in optimizer_state_names(optimizer)}
