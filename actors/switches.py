"""Context switches over a pass: the kernel's, per process, and the event loop's, per actor task.

The kernel's, for the coordinator's process and every process on this machine where
the executor runs steps (the pool's, Ray's actors here): voluntary switches (the
thread waited — on a pipe, a lock, a sleep), involuntary ones (it was preempted) and
migrations to another CPU.  Linux counts them per thread, in
``/proc/<pid>/task/<tid>/sched`` (``nr_voluntary_switches``, ``nr_involuntary_switches``,
``se.nr_migrations``); a process' numbers here are the sums over its threads.
``/proc/<pid>/status`` holds the main thread's switches only, ``getrusage`` has no
migrations and sees no other process, and psutil reads the same files.  A thread
that starts during the pass counts from zero; what a thread that ends during the
pass had counted is lost (anyio's worker threads outlive a step; the pool's
processes run one thread).  A kernel without the ``sched`` files (built without
scheduler statistics) gives the switches from ``status`` and no migrations
(``None``); a system without ``/proc`` gives no process at all.

The event loop's: ``TaskSwitches.run(name, function, *args)`` awaits
``function(*args)`` in the calling task and counts each time the event loop resumes
it after it gave up control — at every channel operation (each is a checkpoint),
every blocked wait, every step handed to a thread or a process.  The count is kept
by the coroutine's own driver, so it is exact, and costs one generator step per
resumption (well under a microsecond; measured in the README).
"""

from __future__ import annotations

import math
import os
import types
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
COORDINATOR = "coordinator"
KINDS = ("voluntary", "involuntary", "migrations")  # what the kernel counts, see ProcessSwitches
_SCHED_KEYS = {
    "nr_voluntary_switches": "voluntary",
    "nr_involuntary_switches": "involuntary",
    "se.nr_migrations": "migrations",
}
_STATUS_KEYS = {"voluntary_ctxt_switches": "voluntary", "nonvoluntary_ctxt_switches": "involuntary"}


@dataclass(frozen=True)
class ProcessSwitches:
    """One process' context switches over a pass, summed over its threads."""

    process: str  # "coordinator", "pool 0", "ray actor 1"
    pid: int
    voluntary: int
    involuntary: int
    migrations: int | None  # None: this kernel does not say
    threads: int  # threads counted (alive at the end of the pass)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PassSwitches:
    """A pass' context switches: the kernel's per process, the event loop's per actor task."""

    processes: tuple[ProcessSwitches, ...] = ()
    # Resumptions by actor task, e.g. {"coordinator": 812, "worker 0": 410, "worker 1": 407}.
    tasks: dict[str, int] = field(default_factory=dict)

    @property
    def task_resumptions(self) -> int:
        return sum(self.tasks.values())

    def of(self, process: str) -> ProcessSwitches | None:
        return next((p for p in self.processes if p.process == process), None)

    def total(self, kind: str, process: str | None = None) -> float:
        """The kernel's count of ``kind`` (see ``KINDS``) over every process, or one; nan if unknown."""
        values = [getattr(p, kind) for p in self.processes if process in (None, p.process)]
        return math.nan if not values or None in values else sum(values)


def thread_counts(pid: int) -> dict[int, dict[str, int | None]]:
    """The kernel's counts of each thread of ``pid`` now, by thread id (empty if the process is gone)."""
    try:
        tids = [int(entry) for entry in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return {}
    counts = {}
    for tid in tids:
        found = _read(Path(f"/proc/{pid}/task/{tid}/sched"), _SCHED_KEYS)
        if found is None:
            found = _read(Path(f"/proc/{pid}/task/{tid}/status"), _STATUS_KEYS)
            if found is None:
                continue  # the thread ended meanwhile
            found["migrations"] = None
        counts[tid] = found
    return counts


def _read(path: Path, keys: dict[str, str]) -> dict[str, int | None] | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    found: dict[str, int | None] = {}
    for line in text.splitlines():
        name, sign, value = line.partition(":")
        key = keys.get(name.strip())
        if sign and key is not None:
            found[key] = int(value)
    return found if len(found) == len(keys) else None


def processes_of(executor: object) -> dict[str, int]:
    """The processes of a pass on this machine by name: the coordinator's, then the executor's.

    An executor that runs its steps in this process (inline, thread, a test's stand-in)
    has no ``process_ids`` method and adds none.
    """
    theirs: Callable[[], dict[str, int]] | None = getattr(executor, "process_ids", None)
    return {COORDINATOR: os.getpid(), **(theirs() if theirs is not None else {})}


class Switches:
    """Counts a pass' context switches from its making to ``since()``.

    Made before the pass' actors start: it reads the kernel's counts of
    ``executor``'s processes then; ``tasks.run`` counts the actor tasks' resumptions;
    ``since()`` reads the kernel again and gives the differences.  A process that
    replaced another during the pass (a pool process that died) counts from zero.
    """

    def __init__(self, executor: object) -> None:
        self.executor = executor
        self.tasks = TaskSwitches()
        self._start = {pid: thread_counts(pid) for pid in processes_of(executor).values()}

    def since(self) -> PassSwitches:
        processes = []
        for name, pid in processes_of(self.executor).items():
            now = thread_counts(pid)
            if not now:
                continue
            before = self._start.get(pid, {})
            voluntary, involuntary, migrations = (_delta(now, before, kind) for kind in KINDS)
            processes.append(ProcessSwitches(name, pid, voluntary, involuntary, migrations, len(now)))
        return PassSwitches(tuple(processes), self.tasks.counts())


def _delta(now: dict, before: dict, kind: str) -> Any:
    """The sum over the threads alive now of their count of ``kind`` since ``before`` (None: unknown)."""
    total = 0
    for tid, counts in now.items():
        value = counts[kind]
        if value is None:
            return None
        total += value - (before.get(tid, {}).get(kind) or 0)
    return total


class _Count:
    __slots__ = ("resumptions",)

    def __init__(self) -> None:
        self.resumptions = 0


class TaskSwitches:
    """How often the event loop resumed each named actor task."""

    def __init__(self) -> None:
        self._counts: dict[str, _Count] = {}

    async def run(self, name: str, function: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """``await function(*args)`` here, counting its resumptions under ``name``.

        Cancellation and errors pass through unchanged: the count stops where the
        coroutine stops.
        """
        count = self._counts.setdefault(name, _Count())
        return await _counted(function(*args), count)

    def counts(self) -> dict[str, int]:
        return {name: count.resumptions for name, count in self._counts.items()}


@types.coroutine
def _counted(coroutine: Coroutine[Any, Any, T], count: _Count) -> Any:
    """Drive ``coroutine`` as ``await`` would, adding one to ``count`` at every resumption.

    Each value the coroutine yields goes up to the task (a future to wait for, or
    nothing: a checkpoint); what the task sends or throws back when it resumes goes
    down to the coroutine.
    """
    send, throw = coroutine.send, coroutine.throw
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            yielded = send(value) if error is None else throw(error)
        except StopIteration as stop:
            return stop.value
        try:
            value, error = (yield yielded), None
        except GeneratorExit:
            coroutine.close()
            raise
        except BaseException as thrown:  # a cancellation, or an error set on the awaited future
            value, error = None, thrown
        count.resumptions += 1
