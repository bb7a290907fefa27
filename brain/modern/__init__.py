"""Modern semantics: the textbook math the thesis' "future work" asked for.

Unlike ``brain.reference`` (the thesis program, kept bit-for-bit): no ÷ layer-size
normalisation, weight decay with the right sign, the full softmax Jacobian,
cross-entropy, biases as ordinary weights (or none), mini-batches through BLAS,
float32 on request, eight optimizers, learning-rate schedules and initialisations.

Readable parts: ``forward`` (forward pass, loss), ``gradients`` (back-propagation);
fast parts: ``optimizers`` and ``online`` (numba), ``minibatch`` (BLAS products into
preallocated buffers, numba for the element-wise rest).  ``train`` holds the entry points;
they are imported from it when first used, so that what only reads settings (a batch
file, ``check``) loads no numba kernels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from brain.layout import with_bias
from brain.modern.hyper import (
    OPTIMIZERS,
    Loss,
    Modern,
    Optimizer,
    Precision,
    Update,
    new_state,
    optimizer_state_names,
)
from brain.modern.init import Init, initial_weights
from brain.modern.schedules import Schedule, ScheduleKind, learning_rate_at
from brain.modern.state import replica_state, state_to_save

_ENTRY_POINTS = ("test_modern", "train_modern", "warm_up")


def __getattr__(name: str) -> Any:
    if name not in _ENTRY_POINTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from brain.modern import train

    value = globals()[name] = getattr(train, name)  # found here from now on, like every other name
    return value


if TYPE_CHECKING:
    from brain.modern.train import test_modern, train_modern, warm_up

__all__ = [
    "OPTIMIZERS",
    "Init",
    "Loss",
    "Modern",
    "Optimizer",
    "Precision",
    "Schedule",
    "ScheduleKind",
    "Update",
    "initial_weights",
    "learning_rate_at",
    "new_state",
    "optimizer_state_names",
    "replica_state",
    "state_to_save",
    "test_modern",
    "train_modern",
    "warm_up",
    "with_bias",
]
