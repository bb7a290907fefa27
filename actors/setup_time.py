"""The time a run spends before its rounds: since the process started, part by part, and
what start-up does to keep it short.

The log's ``run_start`` and ``pass_start`` records carry the time and its parts, so
that the start of a run (interpreter, imports, kernels, pre-flight, pool, data,
shared memory) can be read off a log instead of guessed.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import time
from collections.abc import Iterator

from actors.proc import stat_fields


def process_age() -> float:
    """Seconds since this process started, as the kernel recorded it (to its clock tick, 10 ms
    on Linux); NaN where that record cannot be read."""
    fields = stat_fields("self")
    try:
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime: ticks since boot
        return time.clock_gettime(time.CLOCK_BOOTTIME) - started
    except (TypeError, OSError, ValueError, IndexError, AttributeError):  # TypeError: no fields
        return math.nan


class Laps:
    """A stopwatch of named parts: ``lap(name)`` adds the time since the previous lap to ``name``."""

    def __init__(self) -> None:
        self.parts: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.parts[name] = self.parts.get(name, 0.0) + now - self._last
        self._last = now

    @property
    def total(self) -> float:
        return sum(self.parts.values())


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Build what lasts as long as the process without the cyclic collector, then freeze it.

    Start-up makes some 100,000 objects -- numpy's, numba's types and kernels, the
    runtime's modules -- that live until the process ends.  The collector would walk
    them again and again while they are made (a third of the start-up on this
    machine) and at every full collection after, within timed passes too; frozen
    (``gc.freeze``), they are left out of both.  After the block the collector runs
    as before it, on what is made from then on.
    """
    # Garbage made before the block (in a process that runs many batches: a study, the tests)
    # is collected first: frozen, it would never be, and what it holds (a Ray actor's compiled
    # graph, a pool) would never be torn down.  Collected here rather than after the block,
    # the collection walks what exists before it, not the 100,000 objects the block makes
    # (50-100 ms of every start, twice in a run's process).
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
