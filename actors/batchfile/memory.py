"""The memory a run needs, estimated before it starts, and the memory this machine has.

The estimate counts what ``actors.runner`` allocates and keeps, part by part:

* **data sets**: each distinct data set once in shared memory (inputs, class indices
  or direct targets, the epoch's order), and once more as read from its file;
* **networks**: per network and Parallel, in shared memory the main connectome, a
  replica per worker, the round's snapshot and each worker's start,
  ``(2 + 2 × Parallel) × weights × 8`` bytes; in the coordinator the network kept
  across passes, the one read from the PersistenceFile and the copy that is saved;
* **optimizer state** (modern semantics): a row per replica and state array (Adam
  keeps two), in shared memory and again in the saved copy;
* **workers**: each worker's working memory during a step (the gradient of a modern
  step, the activations of a mini-batch or of a test chunk);
* **runtime**: the interpreter with numpy, numba and the compiled kernels, and each
  worker process (proportional set sizes measured with ``python -m actors measure``).

Shared memory is counted twice: against the memory available and against the free
space where the arena lives (``/dev/shm`` is a file system of its own size).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from actors.batchfile.settings import Settings
from actors.executors.arena import shared_root
from actors.vocabulary import ExecutorName
from brain.layout import Layout
from brain.modern.forward import TEST_CHUNK
from brain.modern.hyper import Precision, Update, optimizer_state_names

FLOAT = 8  # bytes of a float64 or an int64
# Measured peak PSS of whole runs: 234 MB for 500 lines and Executor inline, 242 MB with 2 pool
# processes; 323 MB for batch/default.txt at Parallel 2 (of which 115 MB data sets and networks).
RUNTIME_BYTES = 220 * 2**20
PROCESS_BYTES = 10 * 2**20  # each worker process, beyond what it shares with the coordinator


@dataclass(frozen=True)
class PassShape:
    """What one pass allocates, as the pre-flight knows it before the run."""

    settings: Settings
    training: bool
    layout: Layout  # with or without bias neurons, as the pass trains it
    data_key: tuple  # the runner keeps one copy of the data set per key
    data_bytes: int  # its arrays in shared memory: inputs, targets, order


@dataclass(frozen=True)
class Need:
    """Bytes per part (``parts``), and how many of all of them live in shared memory."""

    parts: dict[str, int]
    shared: int

    @property
    def total(self) -> int:
        return sum(self.parts.values())


@dataclass(frozen=True)
class Have:
    """The memory available now, and the free space where the arena's shared memory lives (None: unknown)."""

    memory: int | None
    shared: int | None
    shared_folder: Path


def estimate(passes: Sequence[PassShape]) -> Need:
    """The memory a run of ``passes`` needs at its peak, by part (see the module's doc)."""
    data: dict[tuple, int] = {}
    weights: dict[tuple[int, int], int] = {}
    optimizer_shared, optimizer_key = 0, None
    private = {"networks": 0, "optimizer state": 0, "workers": 0}
    for shape in passes:
        s, n, p = shape.settings, shape.layout.n_weights, shape.settings.parallel
        data[shape.data_key] = shape.data_bytes
        weights[(n, p)] = (2 + 2 * p) * n * FLOAT
        states = len(optimizer_state_names(s.optimizer)) if s.is_modern else 0
        key = (s.optimizer, p, n, s.network_file)
        if s.is_modern and key != optimizer_key:  # the runner allocates anew at every change
            optimizer_shared += p * (states * n + 1) * FLOAT
            optimizer_key = key
        private["networks"] = max(private["networks"], 3 * n * FLOAT)
        private["optimizer state"] = max(private["optimizer state"], 2 * p * states * n * FLOAT)
        private["workers"] = max(private["workers"], p * _step_bytes(shape))
    shared = sum(data.values()) + sum(weights.values()) + optimizer_shared
    parts = {
        "data sets": 2 * sum(data.values()),  # shared, and as read
        "networks": sum(weights.values()) + private["networks"],
        "optimizer state": optimizer_shared + private["optimizer state"],
        "workers": private["workers"],
        "runtime": RUNTIME_BYTES + PROCESS_BYTES * max((_processes(x.settings) for x in passes), default=0),
    }
    return Need(parts, shared)


def available() -> Have:
    """MemAvailable (or less, under a cgroup limit), and the free space of the arena's folder."""
    folder = shared_root()
    try:
        stats = os.statvfs(folder)
        shared = stats.f_bavail * stats.f_frsize
    except OSError:
        shared = None
    return Have(_memory_available(), shared, folder)


def problem(need: Need, have: Have) -> str | None:
    """Why the run does not fit, with both numbers; None when it fits."""
    if have.memory is not None and need.total > have.memory:
        return f"the run needs about {size(need.total)} of memory, {size(have.memory)} is available"
    if have.shared is not None and need.shared > have.shared:
        return (
            f"the run needs about {size(need.shared)} of shared memory in {have.shared_folder}, "
            f"{size(have.shared)} is free there"
        )
    return None


def describe(need: Need, have: Have) -> str:
    """One line: the estimate by part, and what the machine has."""
    parts = ", ".join(f"{name} {size(value)}" for name, value in need.parts.items() if value)
    memory = "unknown" if have.memory is None else size(have.memory)
    shared = "unknown" if have.shared is None else size(have.shared)
    return (
        f"memory: about {size(need.total)} needed ({parts}), {memory} available; "
        f"shared memory {size(need.shared)} of it, {shared} free in {have.shared_folder}"
    )


def size(count: int) -> str:
    """Bytes for people: ``512 MiB``, ``1.3 GiB``."""
    if count >= 2**30:
        return f"{count / 2**30:,.1f} GiB"
    return f"{math.ceil(count / 2**20):,} MiB"


def _step_bytes(shape: PassShape) -> int:
    """A worker's working memory in one step: the gradient and the activations it keeps."""
    s, layout = shape.settings, shape.layout
    neurons = sum(layer.size for layer in layout.layers)
    if not s.is_modern:
        return 4 * neurons * FLOAT  # one line's values, errors and deltas
    copy = layout.n_weights * 4 if s.precision is Precision.FLOAT32 else 0  # the float32 weights
    if not shape.training:
        return copy + 3 * TEST_CHUNK * neurons * FLOAT
    rows = s.minibatch if s.update is Update.MINI_BATCH else 1
    return layout.n_weights * FLOAT + copy + 3 * rows * neurons * FLOAT  # + the gradient


def _processes(settings: Settings) -> int:
    """Worker processes of the pass' executor (inline and thread run in the coordinator)."""
    if settings.executor in (ExecutorName.PROCESS, ExecutorName.PROCESSPOOL):
        return min(settings.parallel, len(os.sched_getaffinity(0))) + 1  # + the pool's server
    return settings.parallel if settings.executor is ExecutorName.RAY else 0


def _memory_available() -> int | None:
    limits = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                limits.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    for limit, usage in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # cgroup v2
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            limits.append(int(Path(limit).read_text()) - int(Path(usage).read_text()))
        except (OSError, ValueError):  # no such cgroup, or "max": no limit
            continue
    return min(limits) if limits else None
