"""Executors in this process: ``inline`` in the event loop's thread, ``thread`` in anyio's worker threads.

Both run ``run_step`` on the arena's arrays right here, so they give the same
numbers as the process executors for the same seed (with Parallel 1, bit for bit).
``inline`` is for tests and debugging (nothing overlaps); ``thread`` relies on the
numba kernels releasing the GIL.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio

from actors.executors.step import Workload, run_step, warm_up
from actors.messages import StepResult
from actors.vocabulary import ExecutorName


class SharedMemory:
    """An executor whose steps map the arena: the data are where the steps run already."""

    async def prepare(self, work: Workload) -> None:
        """Nothing to do: every process maps the arena itself."""

    def end_pass(self) -> None:
        """Nothing to report: nothing went anywhere but through the arena."""


class _InThisProcess(SharedMemory):
    """Steps in this process, each on one BLAS thread while the executor lives, as in a pool process.

    BLAS would otherwise start a thread per core for every product: ``workers`` threads
    of steps would share the cores with as many again each, and a step's numbers would
    depend on how many threads split its products.  ``close`` gives BLAS back the
    threads it had.
    """

    def __init__(self, workers: int) -> None:
        from threadpoolctl import threadpool_limits

        self.workers = workers
        self._blas = threadpool_limits(1, user_api="blas")

    def warm_up(self) -> None:
        """Load the kernels the steps call, here, before any pass is timed."""
        warm_up()

    async def everywhere(self, function: Callable[[], object]) -> None:
        """Run ``function`` where the steps run (here, once for all), e.g. to load kernels before timing."""
        function()

    def close(self) -> None:
        self._blas.restore_original_limits()


class InlineExecutor(_InThisProcess):
    """Runs the step right here, blocking the event loop while it computes."""

    name = ExecutorName.INLINE

    async def run(self, work: Workload, worker: int, start: int, stop: int) -> StepResult:
        """Computes, then yields once so that other actors get their turn."""
        result = run_step(work, worker, start, stop)
        await anyio.lowlevel.checkpoint()
        return result


class ThreadExecutor(_InThisProcess):
    """Runs the step in one of ``workers`` threads; the kernels release the GIL."""

    name = ExecutorName.THREAD

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self._limiter = anyio.CapacityLimiter(workers)

    async def run(self, work: Workload, worker: int, start: int, stop: int) -> StepResult:
        """On cancellation the thread finishes its slice; its result is dropped."""
        return await anyio.to_thread.run_sync(run_step, work, worker, start, stop, limiter=self._limiter)
