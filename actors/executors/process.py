"""Executors in a pool of processes: ``process`` (our pool, one pipe each) and ``processpool``.

Both run the same step as the executors in this process, on the same shared arrays.
Their processes are forked from a server that has already imported the kernels,
each pinned to one BLAS/numba thread.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import anyio

from actors.executors.local import SharedMemory
from actors.executors.pool import ProcessDied, ProcessPool, RequestLost, fork_server
from actors.executors.step import Workload, pack, rehearse_packed, run_packed_step, run_step, warm_up
from actors.messages import StepResult
from actors.vocabulary import ExecutorName
from brain.errors import UserError

EventSink = Callable[..., object]


class WorkerLost(UserError):
    """The pool's processes kept dying: the pass cannot go on."""


class ProcessExecutor(SharedMemory):
    """Runs the step in a pool of processes sharing the arena, driven from the event loop.

    The pool (``actors.executors.pool.ProcessPool``) has ``processes`` processes: by default as
    many as there are workers, at most the number of cores — more would only
    time-slice the same cores, as Go's scheduler multiplexes goroutines onto
    GOMAXPROCS threads.  Its processes are forked from a server that has loaded the
    compiled kernels, and each is pinned to one BLAS/numba thread.  Worker w's steps
    always run in process ``w % processes``, where its replica is still in the
    cache; with ``pin`` (the PinProcesses setting) process i runs on CPU i alone, so
    that two never queue on one core while the other idles (the scheduler otherwise
    does that often enough, at 2 ms a step, to cost a tenth of an epoch); with
    ``batch_scheduling`` (BatchScheduling) the processes are batch work to the
    scheduler (``pool.as_batch_work``).

    A process that dies mid-step (killed, out of memory, a crash in native code) is
    replaced and exactly that step runs again — from the round's snapshot, as every
    step starts — so every line is trained once and merged once; so do the other
    steps queued on it (``RequestLost``).  After ``max_failures`` deaths in a row
    without a step completing it gives up with ``WorkerLost``.  A death counts once
    however many steps were queued on the process, and a step whose request was lost
    only because another step queued on the same process was cancelled (the pool
    then kills the process) does not count at all: no process failed.
    ``on_event(name, **fields)`` hears of every step lost.
    """

    name = ExecutorName.PROCESS
    max_failures = 3

    def __init__(
        self,
        workers: int,
        processes: int | None = None,
        on_event: EventSink | None = None,
        *,
        pin: bool = True,
        batch_scheduling: bool = True,
    ) -> None:
        self.workers = workers
        self.pin = pin
        self.batch_scheduling = batch_scheduling
        self.processes = processes or max(1, min(workers, len(os.sched_getaffinity(0))))  # usable CPUs
        self.on_event = on_event or _ignore
        self.restarts = 0
        self._failures_in_a_row = 0
        # The fork server loads the compiled kernels once; every pool process inherits them.
        self._context = fork_server()
        self._start()

    def _start(self) -> None:
        self._pool = ProcessPool(
            self.processes, self._context, initializer=_pin_threads, pin=self.pin, batch=self.batch_scheduling
        )
        self._packed: tuple[Workload, bytes] | None = None

    def _packed_work(self, work: Workload) -> bytes:
        if self._packed is None or self._packed[0] is not work:
            self._packed = (work, pack(work))
        return self._packed[1]

    async def prepare(self, work: Workload) -> None:
        """Before the pass is timed, each worker's process maps the pass' arrays and reads in the
        pages its first step starts from (``step.rehearse``): part of the setup, not of the epoch."""
        packed = self._packed_work(work)
        async with anyio.create_task_group() as group:
            for worker in range(self.workers):
                group.start_soon(self._rehearse, work, packed, worker)

    async def _rehearse(self, work: Workload, packed: bytes, worker: int) -> None:
        try:
            await self._pool.call(worker, rehearse_packed, packed, worker)
        except self._deaths as death:  # found dead before the pass: counted as a step's, with no lines
            self._lost(death, work, worker, 0, 0)  # the pass' steps run on its replacement

    async def _call(self, work: Workload, worker: int, start: int, stop: int) -> StepResult:
        fields = await self._pool.call(worker, run_packed_step, self._packed_work(work), worker, start, stop)
        return StepResult(*fields)

    _deaths: tuple[type[BaseException], ...] = (ProcessDied,)

    async def run(self, work: Workload, worker: int, start: int, stop: int) -> StepResult:
        """Run one step, again on a fresh process if its process dies.

        On cancellation the step's process is stopped and replaced.  Raises
        ``WorkerLost`` when processes keep dying; re-raises the step's own errors.
        """
        while True:
            try:
                result = await self._call(work, worker, start, stop)
            except self._deaths as death:
                self._lost(death, work, worker, start, stop)
                continue
            self._failures_in_a_row = 0
            return result

    def _lost(self, death: BaseException, work: Workload, worker: int, start: int, stop: int) -> None:
        if not isinstance(death, RequestLost):  # whoever met the death first counts it
            self._failures_in_a_row += 1
        self.on_event(
            "process_lost", error=str(death), worker=worker, start=start, stop=stop,
            failures_in_a_row=self._failures_in_a_row,
        )  # fmt: skip
        if self._failures_in_a_row > self.max_failures:
            raise WorkerLost(
                f"the worker processes died {self._failures_in_a_row} times in a row",
                allowed="enough memory for Parallel processes; see the log for the slices lost",
            )
        self.restarts += 1  # the step runs again from its start (Workload.state), not from what was left

    async def everywhere(self, function: Callable[[], object]) -> None:
        """Run ``function`` once in every process of the pool (all at once)."""
        async with anyio.create_task_group() as group:
            for index in range(self.processes):
                group.start_soon(self._pool.call, index, function)

    def warm_up(self) -> None:
        """The processes start (and load the kernels) when the pool is made: nothing left to do."""

    def pids(self) -> list[int]:
        """The process ids of the pool's processes now (for tests and diagnostics)."""
        return self._pool.pids()

    def process_ids(self) -> dict[str, int]:
        """The pool's processes now by name, ``pool 0``, ``pool 1``, … (whose context switches count)."""
        return {f"pool {index}": pid for index, pid in enumerate(self.pids())}

    def close(self) -> None:
        """Stop the pool's processes (a running step is waited for, briefly)."""
        self._pool.close()


class StandardPoolExecutor(ProcessExecutor):
    """The same, on ``concurrent.futures.ProcessPoolExecutor`` (``Executor: processpool``).

    Kept to measure what its queue and management threads cost per step.  A dead
    process breaks this pool as a whole: every step in flight fails, a fresh pool
    is started once, and each of those steps runs again from the round's snapshot.
    """

    name = ExecutorName.PROCESSPOOL
    _deaths = (BrokenProcessPool,)

    def _start(self) -> None:
        self._pool = ProcessPoolExecutor(self.processes, mp_context=self._context, initializer=_pin_threads)
        self._generation = getattr(self, "_generation", -1) + 1

    async def prepare(self, work: Workload) -> None:
        """Nothing: which process runs which step is the standard pool's choice, so nothing to rehearse."""

    async def _call(self, work: Workload, worker: int, start: int, stop: int) -> StepResult:
        generation = self._generation
        try:
            return await asyncio.wrap_future(self._pool.submit(run_step, work, worker, start, stop))
        except BrokenProcessPool:
            if generation == self._generation:  # once per breakage, however many steps saw it
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._start()
            raise

    async def everywhere(self, function: Callable[[], object]) -> None:
        async with anyio.create_task_group() as group:
            for _ in range(self.processes):
                group.start_soon(asyncio.wrap_future, self._pool.submit(function))

    def warm_up(self) -> None:
        futures = [self._pool.submit(warm_up) for _ in range(self.processes)]
        for future in futures:
            future.result()

    def pids(self) -> list[int]:
        return [process.pid for process in (self._pool._processes or {}).values()]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _ignore(name: str, **fields: object) -> None:
    pass


def _pin_threads() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
