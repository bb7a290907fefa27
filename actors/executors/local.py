"""Executors in this process: ``inline`` in the event loop's thread, ``thread`` in anyio's worker threads.

Both run ``run_step`` on the arena's arrays right here, so they give the same
numbers as the process executors for the same seed (with Parallel 1, bit for bit).
``inline`` is for tests and debugging (nothing overlaps); ``thread`` relies on the
numba kernels releasing the GIL.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio

from actors.executors.step import Workload, run_step
from actors.messages import StepResult
from actors.vocabulary import ExecutorName


class SharedMemory:
    """An executor whose steps map the arena: the data are where the steps run already."""

    async def prepare(self, work: Workload) -> None:
        """Nothing to do: every process maps the arena itself."""

    def end_pass(self) -> None:
        """Nothing to report: nothing went anywhere but through the arena."""


class InlineExecutor(SharedMemory):
    """Runs the step right here, blocking the event loop while it computes."""

    name = ExecutorName.INLINE

    def __init__(self, workers: int) -> None:
        self.workers = workers

    async def everywhere(self, function: Callable[[], object]) -> None:
        """Run ``function`` where the steps run (here), e.g. to load kernels before timing."""
        function()

    async def run(self, work: Workload, worker: int, start: int, stop: int) -> StepResult:
        """Computes, then yields once so that other actors get their turn."""
        result = run_step(work, worker, start, stop)
        await anyio.lowlevel.checkpoint()
        return result

    def close(self) -> None:
        pass


class ThreadExecutor(SharedMemory):
    """Runs the step in one of ``workers`` threads; the kernels release the GIL."""

    name = ExecutorName.THREAD

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._limiter = anyio.CapacityLimiter(workers)

    async def everywhere(self, function: Callable[[], object]) -> None:
        """Threads share this process: running ``function`` here once serves them all."""
        function()

    async def run(self, work: Workload, worker: int, start: int, stop: int) -> StepResult:
        """On cancellation the thread finishes its slice; its result is dropped."""
        return await anyio.to_thread.run_sync(run_step, work, worker, start, stop, limiter=self._limiter)

    def close(self) -> None:
        pass
