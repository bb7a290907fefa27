"""A pool of worker processes driven straight from the event loop, one pipe each.

``concurrent.futures.ProcessPoolExecutor`` moves every call through a queue
feeder thread and a management thread before the event loop hears of the
result: on this project's 2-core machine that costs 0.25-1 ms per step, which a
round of the thesis pays once per slice.  Here the event loop writes the request
into the process' pipe itself and waits for the pipe to become readable
(``anyio.wait_readable``): about 0.04 ms.  ``Executor: processpool`` keeps the
standard library's pool for comparison.

Requests and replies are pickled with the plain ``pickle`` module (the
multiprocessing pickler's dispatch tables cost more and are not needed: nothing
sent is a file descriptor or a lock).  Each process serves one call at a time.

A process that dies mid-call (killed, out of memory, a crash in native code), or
while idle, surfaces as ``ProcessDied`` from the call that finds it dead (its pipe
fails or reads EOF); the pool replaces it before the next call.  A call cancelled while its process computes
kills that process (its late answer would otherwise be read by the next call)
and a fresh one takes its place.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.forkserver
import os
import pickle
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from typing import Any

import anyio

ONE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
PRELOAD = "actors.executors.preload"  # what the fork server imports: the compiled kernels, loaded


def fork_server() -> BaseContext:
    """The context whose processes are forked from a server that has loaded the compiled
    kernels (``PRELOAD``), the server started now if it is not running yet.

    The server takes about a second to start, in its own process; this does not wait for
    it.  A run calls this as soon as it knows it will need a pool, so that the kernels
    load there while this process goes on (imports, reading the data); the first process
    asked of the context waits for whatever is left.  The server, and so every process
    forked from it, starts with one BLAS, OpenMP and numba thread (``ONE_THREAD``, unless
    the environment sets them).
    """
    for key in ONE_THREAD:
        os.environ.setdefault(key, "1")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([PRELOAD])
    multiprocessing.forkserver.ensure_running()
    return context


class ProcessDied(Exception):
    """The process running a call exited before answering."""


class _Worker:
    def __init__(
        self, context: BaseContext, initializer: Callable[[], None] | None, cpu: int | None, batch: bool
    ) -> None:
        self.connection, child_end = context.Pipe()
        self.process = context.Process(target=_serve, args=(child_end, initializer, cpu, batch), daemon=True)
        self.process.start()
        child_end.close()

    def stop(self, timeout: float = 2.0) -> None:
        with contextlib.suppress(OSError):
            self.connection.send_bytes(pickle.dumps(None))
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.connection.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.join()
        self.connection.close()


class ProcessPool:
    """``processes`` long-lived processes; ``await pool.call(index, fn, *args)`` runs fn in one of them.

    A call goes to process ``index % processes`` and waits while that process serves
    another call: a caller that always passes the same index (a worker actor, its
    id) always finds its own process, whose cache still holds its replica.  With
    ``pin``, process i runs on CPU i (modulo the CPUs this process may use), so that
    two processes never queue on one core while another core idles; with ``batch``,
    each process is batch work to the scheduler (``as_batch_work``).

    Not thread-safe: use it from one event loop.  ``close()`` stops every process
    (idempotent, never raises).
    """

    def __init__(
        self,
        processes: int,
        context: BaseContext,
        initializer: Callable[[], None] | None = None,
        *,
        pin: bool = False,
        batch: bool = False,
    ) -> None:
        self._context = context
        self._initializer = initializer
        cpus = sorted(os.sched_getaffinity(0))
        self._cpus = [cpus[i % len(cpus)] if pin else None for i in range(processes)]
        self._batch = batch
        self._workers = [self._start(slot) for slot in range(processes)]
        # A worker always calls its own process: the lock is free, and taking it need not yield.
        self._locks = [anyio.Lock(fast_acquire=True) for _ in range(processes)]

    def _start(self, slot: int) -> _Worker:
        return _Worker(self._context, self._initializer, self._cpus[slot], self._batch)

    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    async def call(self, index: int, function: Callable[..., Any], *args: Any) -> Any:
        """Run ``function(*args)`` in process ``index % processes`` and return its result.

        Waits while that process serves another call.  Re-raises the function's
        exception.  Raises ``ProcessDied`` if the process exits before answering (or
        had exited since its last call).  On cancellation the process is killed and
        replaced; the call has no effect beyond what the function already did.
        """
        slot = index % len(self._workers)
        async with self._locks[slot]:
            worker = self._workers[slot]
            healthy = False
            try:
                # A process that died while idle shows here: the write fails or the pipe reads EOF.
                worker.connection.send_bytes(pickle.dumps((function, args), pickle.HIGHEST_PROTOCOL))
                await anyio.wait_readable(worker.connection.fileno())
                ok, value = pickle.loads(worker.connection.recv_bytes())
                healthy = True
            except (EOFError, OSError):
                worker.process.join(1.0)
                raise ProcessDied(
                    f"worker process {worker.process.pid} exited (code {worker.process.exitcode})"
                ) from None
            finally:
                if not healthy:
                    if worker.process.is_alive():
                        worker.kill()
                    else:
                        worker.connection.close()
                    self._workers[slot] = self._start(slot)
            if not ok:
                raise value
            return value

    def close(self) -> None:
        for worker in self._workers:
            worker.stop()


def as_batch_work() -> bool:
    """Tell the scheduler that this process is CPU-bound batch work (Linux ``SCHED_BATCH``); whether it could.

    A process woken with a request then does not preempt the process that woke it:
    the coordinator, which wakes one pool process per slice, goes on handing out the
    round's other slices and merging instead of waiting for a core (on 2 cores the
    Parallel 2 epoch took 4 % less, the asyncio floor's too).  Its share of the CPU
    is unchanged; where the policy does not exist, nothing changes.
    """
    if not hasattr(os, "SCHED_BATCH"):
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except OSError:
        return False
    return True


def _serve(
    connection: Connection, initializer: Callable[[], None] | None, cpu: int | None, batch: bool
) -> None:
    """The loop of a pool process: one call at a time until told to stop or the parent goes."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    if batch:
        as_batch_work()
    if initializer is not None:
        initializer()
    while True:
        try:
            request = pickle.loads(connection.recv_bytes())
        except (EOFError, OSError):
            break
        if request is None:
            break
        function, args = request
        try:
            reply = (True, function(*args))
        except BaseException as error:  # sent back and raised in the coordinator's process
            reply = (False, error)
        try:
            message = pickle.dumps(reply, pickle.HIGHEST_PROTOCOL)
        except Exception as error:  # an answer or an error that does not pickle: say so instead
            message = pickle.dumps((False, RuntimeError(f"unpicklable reply from the pool: {error!r}")))
        try:
            connection.send_bytes(message)
        except OSError:
            break
    connection.close()
    os._exit(0)
