"""A pool of worker processes driven straight from the event loop, one pipe each.

``concurrent.futures.ProcessPoolExecutor`` moves every call through a queue
feeder thread and a management thread before the event loop hears of the
result: on this project's 2-core machine that costs 0.25-1 ms per step, which a
round of the thesis pays once per slice.  Here the event loop writes the request
into the process' pipe itself and waits for the pipe to become readable
(``readable``): about 0.04 ms.  ``Executor: processpool`` keeps the
standard library's pool for comparison.

Requests and replies are pickled with the plain ``pickle`` module (the
multiprocessing pickler's dispatch tables cost more and are not needed: nothing
sent is a file descriptor or a lock).

A call writes its request at once, even while its process serves another call:
the requests of one process queue in its pipe and it serves them one after
another, in the order they were written, so it goes from one step straight to
the next (with Parallel 4 on 2 processes a process no longer idles between its
two steps of a round while a reply travels to the event loop and the next
request back).  The replies are read in the same order: the caller whose request
went first reads first.  The requests waiting unread in a pipe are kept under
``QUEUE_BYTES`` (a few KB each here: the pickled workload and slice bounds), so
that writing one never blocks the event loop on a full pipe -- while the event
loop was stuck in that write, the process could be stuck writing a reply nobody
reads; a request too big for what is left waits until the calls before it have
been answered.

A process that dies mid-call (killed, out of memory, a crash in native code), or
while idle, surfaces as ``ProcessDied`` from the call that finds it dead (its pipe
fails or reads EOF), and as ``RequestLost`` (a ``ProcessDied``) from every other call
whose request was queued on it; the pool replaces it at once.  A call cancelled
after writing its request and before reading its reply kills its process (its
late answer would otherwise be read by the next call) and a fresh one takes its
place; the calls queued on the killed process get ``RequestLost``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.forkserver
import os
import pickle
from asyncio import Future, get_running_loop
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from typing import Any

import anyio

ONE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
PRELOAD = "actors.executors.preload"  # what the fork server imports: the compiled kernels, loaded
# The bytes of requests a process may have unanswered before the next waits for replies.  A
# socket pair (multiprocessing's Pipe) holds about 200 KiB of them on Linux, counting the
# kernel's ~0.8 KiB per message (measured: 93 requests of 1.2 KiB, 278 of 1 byte), a pipe
# 64 KiB: MESSAGE_OVERHEAD charged on each request keeps a write from ever blocking.
QUEUE_BYTES = 64 * 1024
MESSAGE_OVERHEAD = 1024


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


class RequestLost(ProcessDied):
    """The call's request was lost with its process, whose end another call met first.

    That call either found the process dead (and got ``ProcessDied`` for it) or was
    cancelled while its own request was queued (and the pool killed the process).
    """


class _Worker:
    """A pool process, the parent's end of its pipe, and the calls queued on it."""

    def __init__(
        self, context: BaseContext, initializer: Callable[[], None] | None, cpu: int | None, batch: bool
    ) -> None:
        self.connection, child_end = context.Pipe()
        self.process = context.Process(target=_serve, args=(child_end, initializer, cpu, batch), daemon=True)
        self.process.start()
        child_end.close()
        # Held by the call reading its reply; the calls queued behind it wait for it in the order
        # they wrote their requests: anyio's Lock hands itself to its waiters first come, first
        # served, and a call asks for it right after writing, with no await in between.
        self.reading = anyio.Lock(fast_acquire=True)
        self.queued = 0  # calls whose request is written and whose reply is not read yet
        self.queued_bytes = 0  # their requests' size, each with MESSAGE_OVERHEAD
        self.lost = False  # exited or killed (and replaced): the replies not read yet will not come

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

    A call goes to process ``index % processes`` and queues behind the calls that
    process has not answered yet: a caller that always passes the same index (a
    worker actor, its id) always finds its own process, whose cache still holds its
    replica.  With ``pin``, process i runs on CPU i (modulo the CPUs this process
    may use), so that two processes never queue on one core while another core
    idles; with ``batch``, each process is batch work to the scheduler
    (``as_batch_work``).

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

    def _start(self, slot: int) -> _Worker:
        return _Worker(self._context, self._initializer, self._cpus[slot], self._batch)

    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    async def call(self, index: int, function: Callable[..., Any], *args: Any) -> Any:
        """Run ``function(*args)`` in process ``index % processes`` and return its result.

        The request is written at once, behind the requests that process has not
        answered yet (unless they fill ``QUEUE_BYTES``: then it waits for their
        replies first), and the reply is read after theirs.  Re-raises the
        function's exception.  Raises ``ProcessDied`` if the process exits before
        answering (or had exited since its last call), ``RequestLost`` (a
        ``ProcessDied``) if the request was queued on a process that another call
        found dead or that was killed because another call queued on it was
        cancelled.  On cancellation after the request was written and before the
        reply was read, the process is killed and replaced (once, however many of
        its calls are cancelled); the call has no effect beyond what the function
        already did.
        """
        slot = index % len(self._workers)
        request = pickle.dumps((function, args), pickle.HIGHEST_PROTOCOL)
        size = len(request) + MESSAGE_OVERHEAD
        worker = self._workers[slot]
        while worker.queued and worker.queued_bytes + size > QUEUE_BYTES:
            async with worker.reading:  # the calls queued now have read their replies
                pass
            worker = self._workers[slot]
        try:
            # A process that died while idle shows here (the write fails) or when its pipe reads EOF.
            worker.connection.send_bytes(request)
        except OSError:
            raise self._lost(slot, worker) from None
        worker.queued += 1
        worker.queued_bytes += size
        answered = False
        try:
            async with worker.reading:  # no await since the write: the calls before this one read first
                if worker.lost:
                    raise self._lost(slot, worker)
                await readable(worker.connection.fileno())
                reply = worker.connection.recv_bytes()
                answered = True
        except (EOFError, OSError):
            raise self._lost(slot, worker) from None
        finally:
            worker.queued -= 1
            worker.queued_bytes -= size
            if not answered or worker.lost:  # cancelled (its late answer would go to the next call), or lost
                self._end(slot, worker)
        ok, value = pickle.loads(reply)
        if not ok:
            raise value
        return value

    def _lost(self, slot: int, worker: _Worker) -> ProcessDied:
        """The error of a call that found ``worker``'s process gone, which is replaced if it is not yet."""
        process = worker.process
        if worker.lost:
            error: ProcessDied = RequestLost(f"worker process {process.pid} was lost with this request")
        else:
            process.join(1.0)  # its exit code
            error = ProcessDied(f"worker process {process.pid} exited (code {process.exitcode})")
        self._end(slot, worker)
        return error

    def _end(self, slot: int, worker: _Worker) -> None:
        """Kill ``worker``'s process (once, unless it has exited) and start a fresh one in its slot
        (unless done already); close its pipe once no call is left queued on it, none waiting on it."""
        if not worker.lost:
            worker.lost = True
            if worker.process.is_alive():
                worker.process.kill()
            worker.process.join()
        if self._workers[slot] is worker:
            self._workers[slot] = self._start(slot)
        if not worker.queued:
            worker.connection.close()

    def close(self) -> None:
        for worker in self._workers:
            worker.stop()


async def readable(fd: int) -> None:
    """Wait until ``fd`` can be read, as ``anyio.wait_readable`` does, at half its cost on asyncio.

    On asyncio the loop calls back when the pipe is readable and the callback sets a
    future of the loop, which this awaits; anyio's wait builds an event and a record
    of the waiting task on top of the same callback: twice the instructions per wait
    (README), paid once per step.  On cancellation the callback is removed.  Under
    another event loop, anyio's wait.
    """
    try:
        loop = get_running_loop()
    except RuntimeError:
        await anyio.wait_readable(fd)
        return
    ready: Future[None] = loop.create_future()
    loop.add_reader(fd, _set_ready, ready)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


def _set_ready(ready: Future[None]) -> None:
    if not ready.done():  # not cancelled meanwhile
        ready.set_result(None)


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
    """The loop of a pool process: one call after another, in the order their requests came,
    until told to stop or the parent goes."""
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
