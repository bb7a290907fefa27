"""The arena's side of a step: which shared arrays a worker's step reads and writes.

Everything a step needs arrives as a small ``Workload`` of shared-array specs; the
arrays themselves are mapped from the arena (once per process), and
``brain.step.step`` computes on them — the same function every executor calls.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass

import numpy as np

from actors.clock import now, place
from actors.executors.arena import ArraySpec, attach
from actors.messages import StepResult
from brain.data.targets import Targets
from brain.step import Math, Optimizer, step
from brain.step import warm_up as warm_up_kernels


@dataclass(frozen=True, slots=True)
class Workload:
    """What every step of a pass shares: where the data and weights are, and the math."""

    mode: str  # "train" or "test"
    inputs: ArraySpec
    labels: ArraySpec
    direct: ArraySpec
    order: ArraySpec
    main: ArraySpec
    replicas: ArraySpec
    math: Math
    # Where a training step's replica starts: the round's snapshot of main (Sync rounds, one row)
    # or each worker's start (Async, a row per worker); a slice re-run after a loss starts there too.
    state: ArraySpec | None = None
    # Modern semantics: each replica's optimizer state (a row per worker) and step count.
    optimizer_state: tuple[tuple[str, ArraySpec], ...] = ()
    optimizer_steps: ArraySpec | None = None


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


def optimizer_of(work: Workload, worker: int) -> Optimizer | None:
    """Replica ``worker``'s optimizer state (views of its rows in the arena), or None: thesis semantics."""
    if work.optimizer_steps is None:
        return None
    arrays = {name: attach(spec)[worker] for name, spec in work.optimizer_state}
    return Optimizer(arrays, attach(work.optimizer_steps)[worker : worker + 1])


def targets_of(work: Workload) -> Targets:
    return Targets(attach(work.labels), attach(work.direct))


def run_step(work: Workload, worker: int, start: int, stop: int) -> StepResult:
    """Train replica ``worker`` on lines ``[start, stop)`` of the order, or test them on main.

    A training step first sets the replica to ``start_of(work, worker)``.  Raises
    only on bugs; divergence is reported in the result, not raised, so that the
    coordinator can name the epoch and round.
    """
    began = now()
    rows = attach(work.order)[start:stop]
    inputs, targets = attach(work.inputs), targets_of(work)
    if work.mode == "train":
        outcome = step(
            attach(work.replicas)[worker], inputs, targets, rows, work.math, training=True,
            start=start_of(work, worker), optimizer=optimizer_of(work, worker),
        )  # fmt: skip
    else:
        outcome = step(attach(work.main), inputs, targets, rows, work.math, training=False)
    ended = now()
    return StepResult(*outcome, (ended - began) / 1e9, began, ended, *place())


_unpacked: tuple[bytes, Workload] | None = None


def pack(work: Workload) -> bytes:
    """``work`` pickled once, to be sent with every step of a pass (see ``run_packed_step``)."""
    return pickle.dumps(work, pickle.HIGHEST_PROTOCOL)


def unpack(packed: bytes) -> Workload:
    """The workload ``pack`` made, unpickled once per process and pass rather than per step."""
    global _unpacked
    if _unpacked is None or _unpacked[0] != packed:
        _unpacked = (packed, pickle.loads(packed))
    return _unpacked[1]


def run_packed_step(packed: bytes, worker: int, start: int, stop: int) -> tuple:
    """``run_step`` on a packed workload (``unpack``); the result's ``fields()``, for the pipe back
    (``StepResult(*fields)`` on the other end)."""
    return run_step(unpack(packed), worker, start, stop).fields()


def rehearse(work: Workload, worker: int) -> None:
    """What the first step of worker ``worker`` in a pass would do first in this process, done
    before the pass is timed: map every array of the pass and read in the pages its step starts
    from -- the replica and where it starts (training) or main (testing).  Changes nothing.

    The first step of a pass in a fresh pool process took twice as long as the next ones
    (mapping the arrays, the replica's pages faulting in); the floor's processes had done that
    before they were timed too.
    """
    for spec in (work.inputs, work.labels, work.direct, work.order, work.main, work.replicas, work.state):
        if spec is not None:
            attach(spec)
    optimizer_of(work, worker)
    if work.mode == "train":
        start = start_of(work, worker)
        attach(work.replicas)[worker].sum()
        if start is not None:
            start.sum()
    else:
        attach(work.main).sum()


def rehearse_packed(packed: bytes, worker: int) -> None:
    """``rehearse`` on a packed workload (``unpack``: the pass' steps then find it unpacked)."""
    rehearse(unpack(packed), worker)


def warm_up() -> None:
    """Load every compiled kernel a thesis step will call (from numba's cache, or compile it) now.

    Called where the steps run -- in the pool's fork server (so every pool process
    inherits them), in a Ray actor, in this process for the inline and thread
    executors -- so that neither the first round's time nor a pass' EpochElapsedTime
    includes loading them.  The coordinator's merges have their own (``brain.merge.warm_up``).
    """
    warm_up_kernels()


def warm_up_modern() -> None:
    """The modern kernels, loaded before the first modern pass is timed (about a second)."""
    from brain.modern import warm_up as modern_warm_up

    modern_warm_up()
