"""Where the numeric steps run: inline, in threads, or in a pool of processes.

All three run the same ``run_step`` on the same shared arrays, so they give the
same numbers for the same seed (with Parallel 1, bit for bit).  ``inline`` runs the
step in the event loop's thread (for tests and debugging: nothing overlaps);
``thread`` uses anyio's worker threads (the numba kernels release the GIL);
``process`` submits to a ``ProcessPoolExecutor`` whose processes are forked from a
server that has already imported the kernels, each pinned to one BLAS/numba thread.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Protocol

import anyio

from actors.messages import StepResult
from actors.step import Workload, run_step

EXECUTORS = ("inline", "thread", "process")
_ONE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


class Executor(Protocol):
    """Runs one numeric step; ``workers`` steps may be asked for at once."""

    name: str

    async def run(self, work: Workload, worker: int, start: int, stop: int) -> StepResult: ...

    def close(self) -> None: ...


class InlineExecutor:
    """Runs the step right here, blocking the event loop while it computes."""

    name = "inline"

    def __init__(self, workers: int) -> None:
        self.workers = workers

    async def run(self, work: Workload, worker: int, start: int, stop: int) -> StepResult:
        """Computes, then yields once so that other actors get their turn."""
        result = run_step(work, worker, start, stop)
        await anyio.lowlevel.checkpoint()
        return result

    def close(self) -> None:
        pass


class ThreadExecutor:
    """Runs the step in one of ``workers`` threads; the kernels release the GIL."""

    name = "thread"

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._limiter = anyio.CapacityLimiter(workers)

    async def run(self, work: Workload, worker: int, start: int, stop: int) -> StepResult:
        """On cancellation the thread finishes its slice; its result is dropped."""
        return await anyio.to_thread.run_sync(run_step, work, worker, start, stop, limiter=self._limiter)

    def close(self) -> None:
        pass


class ProcessExecutor:
    """Runs the step in a pool of processes sharing the arena.

    The pool has ``processes`` processes (by default as many as there are workers,
    at most the number of cores: more would only time-slice the same cores, as Go's
    scheduler multiplexes goroutines onto GOMAXPROCS threads).
    """

    name = "process"

    def __init__(self, workers: int, processes: int | None = None) -> None:
        self.workers = workers
        self.processes = processes or max(1, min(workers, os.cpu_count() or 1))
        for key in _ONE_THREAD:
            os.environ.setdefault(key, "1")
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["actors.step"])
        self._pool = ProcessPoolExecutor(self.processes, mp_context=context, initializer=_pin_threads)

    async def run(self, work: Workload, worker: int, start: int, stop: int) -> StepResult:
        """On cancellation a step not yet started is withdrawn; a running one finishes unseen."""
        future = self._pool.submit(run_step, work, worker, start, stop)
        return await asyncio.wrap_future(future)

    def warm_up(self) -> None:
        """Start every process now, so that start-up is not counted in the first round."""
        futures = [self._pool.submit(_pin_threads) for _ in range(self.processes)]
        for future in futures:
            future.result()

    def close(self) -> None:
        """Stop the pool: pending steps are cancelled, the processes exit."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def _pin_threads() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def make_executor(name: str, workers: int) -> Executor:
    """The executor called ``name`` (one of ``EXECUTORS``) for ``workers`` worker actors."""
    if name == "inline":
        return InlineExecutor(workers)
    if name == "thread":
        return ThreadExecutor(workers)
    if name == "process":
        executor = ProcessExecutor(workers)
        executor.warm_up()
        return executor
    raise ValueError(f"unknown executor {name!r}")
