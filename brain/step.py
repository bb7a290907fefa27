"""One numeric step on a worker's replica: train it on a slice of rows, or test weights on them.

The one place where a step's math is chosen — the thesis kernels (``brain.kernels``)
or the modern math (``brain.modern``) — and run.  Every executor calls ``step``: the
pool processes, the thread and inline executors, the Ray actors and the floor
measurement; they differ only in where the arrays live and how they get there.
No I/O and no concurrency here: arrays in, numbers out, the weights (and a modern
replica's optimizer state) updated in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np

from brain import kernels
from brain import modern as modern_math  # its kernels load at the first modern step (or warm-up)
from brain.data.targets import Targets
from brain.hyper import Hyper
from brain.layout import Layout
from brain.modern.hyper import Modern


@dataclass(frozen=True)
class Math:
    """What a step computes with: the network's layout and its semantics' hyper-parameters.

    ``hyper`` is a ``Hyper`` for the thesis semantics, a ``Modern`` for the modern ones.
    """

    layout: Layout
    hyper: Hyper | Modern

    @property
    def modern(self) -> bool:
        return isinstance(self.hyper, Modern)

    @cached_property
    def layers(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The layout as the thesis kernels take it (``kernels.layout_arrays``), made once."""
        return kernels.layout_arrays(self.layout)

    def __reduce__(self) -> tuple[type[Math], tuple[Layout, Hyper | Modern]]:
        # Sent with steps (to Ray actors, with every step): the fields only; ``layers`` is remade there.
        return (Math, (self.layout, self.hyper))


class Optimizer(NamedTuple):
    """One replica's optimizer state (modern semantics), updated in place by a training step.

    ``arrays``: the optimizer's state arrays by name (``optimizer_state_names``), each
    contiguous float64 shaped like the weights; ``steps``: int64, one element, the
    optimizer steps taken so far.
    """

    arrays: dict[str, np.ndarray]
    steps: np.ndarray

    @property
    def nbytes(self) -> int:
        return self.steps.nbytes + sum(array.nbytes for array in self.arrays.values())


class Outcome(NamedTuple):
    """A step's numbers: a test's correct answers and error sum; where training diverged (-1: it did not)."""

    correct: int = 0
    error_sum: float = 0.0
    diverged_at: int = -1


def step(
    weights: np.ndarray,
    inputs: np.ndarray,
    targets: Targets,
    rows: np.ndarray,
    math: Math,
    *,
    training: bool,
    start: np.ndarray | None = None,
    optimizer: Optimizer | None = None,
) -> Outcome:
    """Train ``weights`` in place on ``inputs[rows]`` in order (``training``), or test them there.

    ``weights`` is first set to ``start`` when it is given (a replica starts from the
    round's snapshot; a re-run slice starts there again).  Modern training updates
    ``optimizer`` in place too, and needs it; thesis training and testing ignore it.
    ``rows`` are int64 indices into ``inputs`` and ``targets``.

    Training returns where the output first stopped being finite (the weights have
    diverged; training stopped there), or -1; testing returns the correct answers
    and the summed error.  The thesis kernels do no bounds checks: the caller
    guarantees that the data fit the network (the runner checks before a pass).
    Raises ``ValueError`` (a bug) for modern training without an optimizer state and
    for modern arguments that do not fit (``train_modern``).
    """
    if start is not None:
        np.copyto(weights, start)
    hyper, layout = math.hyper, math.layout
    if not training:
        if isinstance(hyper, Modern):
            correct, error_sum = modern_math.test_modern(weights, layout, inputs, targets, rows, hyper)
        else:
            correct, error_sum = kernels.test_weights(weights, math.layers, inputs, targets, rows, hyper)
        return Outcome(correct, error_sum)
    if not isinstance(hyper, Modern):
        return Outcome(diverged_at=kernels.train_weights(weights, math.layers, inputs, targets, rows, hyper))
    if optimizer is None:
        raise ValueError("a modern training step needs the replica's optimizer state")
    diverged_at = modern_math.train_modern(
        weights, optimizer.arrays, optimizer.steps, layout, inputs, targets, rows, hyper
    )
    return Outcome(diverged_at=diverged_at)


def warm_up() -> None:
    """Load the thesis kernels ``step`` calls (from numba's cache, or compile them) for every input
    type — uint8 or float64 inputs, class or direct targets — before anything is timed."""
    math = Math(Layout.of(("Identity", 2), ("SoftMax", 2)), Hyper(0.1, 0.0))
    rows = np.arange(1, dtype=np.int64)
    labels, no_labels = np.zeros(1, np.int64), np.zeros(0, np.int64)
    direct, no_direct = np.zeros((1, 2)), np.zeros((0, 2))
    weights = np.zeros(math.layout.n_weights)
    for inputs in (np.zeros((1, 2), np.uint8), np.zeros((1, 2))):
        for targets in (Targets(labels, no_direct), Targets(no_labels, direct)):
            for training in (True, False):
                step(weights, inputs, targets, rows, math, training=training)
