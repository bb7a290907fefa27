"""The numeric step of one slice, as any executor runs it — in this process, a thread or the pool.

Everything it needs arrives as a small ``Workload`` of shared-array specs; the
arrays themselves are mapped from the arena (once per process).
"""

from __future__ import annotations

import pickle
import time
from dataclasses import dataclass

import numpy as np

from actors.arena import ArraySpec, attach
from actors.messages import StepResult
from brain import kernels
from brain.data.targets import Targets
from brain.hyper import Hyper
from brain.layout import Layout
from brain.modern import Modern, test_modern, train_modern


@dataclass(frozen=True, slots=True)
class Workload:
    """What every step of a pass shares: where the data and weights are, the layout, the math."""

    mode: str  # "train" or "test"
    inputs: ArraySpec
    labels: ArraySpec
    direct: ArraySpec
    order: ArraySpec
    main: ArraySpec
    replicas: ArraySpec
    neurons: tuple[int, ...]
    bias: tuple[int, ...]
    activations: tuple[int, ...]
    hyper: Hyper
    # Where a training step's replica starts: the round's snapshot of main (Sync rounds, one row)
    # or each worker's start (Async, a row per worker); a slice re-run after a loss starts there too.
    state: ArraySpec | None = None
    # Modern semantics: the math, the layout, and each replica's optimizer state (a row per worker).
    modern: Modern | None = None
    layout: Layout | None = None
    optimizer_state: tuple[tuple[str, ArraySpec], ...] = ()
    optimizer_steps: ArraySpec | None = None

    @staticmethod
    def layout_arrays(layout: Layout) -> dict[str, tuple[int, ...]]:
        return {
            "neurons": tuple(layer.neurons for layer in layout.layers),
            "bias": tuple(int(layer.bias) for layer in layout.layers),
            "activations": tuple(int(layer.activation) for layer in layout.layers),
        }


def start_of(work: Workload, worker: int) -> np.ndarray | None:
    """The weights replica ``worker`` starts a training step from, or None: the replica as it is.

    The round's snapshot of main in Sync rounds, the worker's own start in Async
    rounds.  The step copies them into the replica itself, in the process that then
    computes on it, rather than the coordinator doing it for every replica between
    rounds: the copies run in parallel and the replica is already in the right cache.
    """
    if work.state is None:
        return None
    state = attach(work.state)
    return state[worker] if state.ndim == 2 else state


def run_step(work: Workload, worker: int, start: int, stop: int) -> StepResult:
    """Train replica ``worker`` on lines ``[start, stop)`` of the order, or test them on main.

    A training step first sets the replica to ``start_of(work, worker)``.  Raises
    only on bugs; divergence is reported in the result, not raised, so that the
    coordinator can name the epoch and round.
    """
    began = time.perf_counter()
    if work.mode == "train":
        origin = start_of(work, worker)
        if origin is not None:
            np.copyto(attach(work.replicas)[worker], origin)
    rows = attach(work.order)[start:stop]
    inputs, labels, direct = attach(work.inputs), attach(work.labels), attach(work.direct)
    if work.modern is not None:
        return _modern_step(work, worker, rows, inputs, Targets(labels, direct), began)
    neurons = np.array(work.neurons, np.int64)
    bias = np.array(work.bias, np.int64)
    acts = np.array(work.activations, np.int64)
    hyper = work.hyper
    if work.mode == "train":
        diverged_at = kernels.train_block(
            attach(work.replicas)[worker], neurons, bias, acts, inputs, labels, direct, rows,
            float(hyper.learning_rate), float(hyper.lambda_), int(hyper.preprocessing),
            float(hyper.elu_alpha),
        )  # fmt: skip
        return StepResult(diverged_at=int(diverged_at), seconds=time.perf_counter() - began)
    correct, error_sum = kernels.test_block(
        attach(work.main), neurons, bias, acts, inputs, labels, direct, rows,
        int(hyper.preprocessing), float(hyper.elu_alpha),
    )  # fmt: skip
    return StepResult(int(correct), float(error_sum), -1, time.perf_counter() - began)


_unpacked: tuple[bytes, Workload] | None = None


def pack(work: Workload) -> bytes:
    """``work`` pickled once, to be sent with every step of a pass (see ``run_packed_step``)."""
    return pickle.dumps(work, pickle.HIGHEST_PROTOCOL)


def run_packed_step(packed: bytes, worker: int, start: int, stop: int) -> StepResult:
    """``run_step`` on a packed workload, unpickled once per process and pass rather than per step."""
    global _unpacked
    if _unpacked is None or _unpacked[0] != packed:
        _unpacked = (packed, pickle.loads(packed))
    return run_step(_unpacked[1], worker, start, stop)


def _modern_step(
    work: Workload, worker: int, rows: np.ndarray, inputs: np.ndarray, targets: Targets, began: float
) -> StepResult:
    if work.mode == "train":
        state = {name: attach(spec)[worker] for name, spec in work.optimizer_state}
        steps = attach(work.optimizer_steps)[worker : worker + 1]
        weights = attach(work.replicas)[worker]
        diverged_at = train_modern(weights, state, steps, work.layout, inputs, targets, rows, work.modern)
        return StepResult(diverged_at=int(diverged_at), seconds=time.perf_counter() - began)
    correct, error_sum = test_modern(attach(work.main), work.layout, inputs, targets, rows, work.modern)
    return StepResult(int(correct), float(error_sum), -1, time.perf_counter() - began)


def warm_up() -> None:
    """Load every compiled kernel a pass will call (from numba's cache, or compile it) now.

    Called in each pool process before its first step and once in the coordinator's
    process, so that neither the first round's time nor a pass' EpochElapsedTime
    includes compilation.
    """
    from brain.merge import merge_harmonic

    neurons, bias, acts = np.array([2, 2], np.int64), np.array([1, 0], np.int64), np.array([0, 6], np.int64)
    weights = np.zeros(6)
    rows = np.arange(1, dtype=np.int64)
    labels, no_labels = np.zeros(1, np.int64), np.zeros(0, np.int64)
    direct, no_direct = np.zeros((1, 2)), np.zeros((0, 2))
    for inputs in (np.zeros((1, 2), np.uint8), np.zeros((1, 2))):
        for targets in ((labels, no_direct), (no_labels, direct)):
            kernels.train_block(weights, neurons, bias, acts, inputs, *targets, rows, 0.1, 0.0, 0, 0.5)
            kernels.test_block(weights, neurons, bias, acts, inputs, *targets, rows, 0, 0.5)
    merge_harmonic(weights, weights.copy(), weights.copy(), 1)


def warm_up_modern() -> None:
    """The modern kernels, loaded before the first modern pass is timed (about a second)."""
    from brain.modern import warm_up as modern_warm_up

    modern_warm_up()
