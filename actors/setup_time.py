"""The time a run spends before its rounds: since the process started, and part by part.

The log's ``run_start`` and ``pass_start`` records carry both, so that the start of a
run (interpreter, imports, kernels, pre-flight, pool, data, shared memory) can be
read off a log instead of guessed.
"""

from __future__ import annotations

import math
import os
import time


def process_age() -> float:
    """Seconds since this process started, as the kernel recorded it (to its clock tick, 10 ms
    on Linux); NaN where that record cannot be read."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()  # the name, in parentheses, may hold spaces
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime: ticks since boot
        return time.clock_gettime(time.CLOCK_BOOTTIME) - started
    except (OSError, ValueError, IndexError, AttributeError):
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
