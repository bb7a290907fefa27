"""A pool of worker processes driven straight from the event loop, one pipe each.

``concurrent.futures.ProcessPoolExecutor`` moves every call through a queue
feeder thread and a management thread before the event loop hears of the
result: on this project's 2-core machine that costs 0.25-1 ms per step, which a
round of the thesis pays once per slice.  Here the event loop writes the request
into the process' pipe itself, and the loop's reader callback for that pipe --
registered once, when the process is first called -- reads each reply as soon as
it arrives and hands it to the call waiting for it on a future: about 0.04 ms, and
no reader added and removed per call.  ``Executor: processpool`` keeps the standard
library's pool for comparison.

Requests and replies are pickled with the plain ``pickle`` module (the
multiprocessing pickler's dispatch tables cost more and are not needed: nothing
sent is a file descriptor or a lock).  A request is the function's pickled
reference -- pickled once per function in the parent, unpickled once per process
(``FUNCTIONS``) -- and its pickled arguments.  Both ends write a message as
``multiprocessing.connection`` does (a length, then the bytes, one ``write`` for a
small one) and read with one ``read`` of whatever has arrived (``Frames``), where
``Connection.recv_bytes`` makes two, the length's and the message's: a step's
request and reply each cost one system call less.

A call writes its request at once, even while its process serves another call:
the requests of one process queue in its pipe and it serves them one after
another, in the order they were written, so it goes from one step straight to
the next (with Parallel 4 on 2 processes a process no longer idles between its
two steps of a round while a reply travels to the event loop and the next
request back).  The replies come back in the same order: the reader hands each to
the oldest call still waiting on that process.  The requests waiting unread in a pipe are kept under
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

import asyncio
import contextlib
import multiprocessing
import multiprocessing.forkserver
import os
import pickle
import types
from asyncio import AbstractEventLoop, CancelledError, Future, get_running_loop
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from typing import Any

ONE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
PRELOAD = "actors.executors.preload"  # what the fork server imports: the compiled kernels, loaded
# The bytes of requests a process may have unanswered before the next waits for replies.  A
# socket pair (multiprocessing's Pipe) holds about 200 KiB of them on Linux, counting the
# kernel's ~0.8 KiB per message (measured: 93 requests of 1.2 KiB, 278 of 1 byte), a pipe
# 64 KiB: MESSAGE_OVERHEAD charged on each request keeps a write from ever blocking.
QUEUE_BYTES = 64 * 1024
MESSAGE_OVERHEAD = 1024
READ_BYTES = 64 * 1024  # what one read asks for, unless more of a message is known to be coming
FUNCTIONS = 64  # unpickled function references a process keeps, by their pickled bytes
_STOP = b""  # the message that ends a process' loop


class Frames:
    """Whole messages out of the bytes read from a pipe, however the reads cut them.

    The framing is ``multiprocessing.connection``'s, so that ``Connection.send_bytes``
    writes what this reads: a 4-byte big-endian signed length and the message, or the
    length -1, an 8-byte unsigned length and the message (2 GiB or more).
    """

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def wanted(self) -> int:
        """How many bytes the next read should ask for: READ_BYTES, or the rest of a longer message."""
        buffer = self._buffer
        if len(buffer) < 4:
            return READ_BYTES
        size = int.from_bytes(buffer[:4], "big", signed=True)
        if size == -1:
            if len(buffer) < 12:
                return READ_BYTES
            return max(READ_BYTES, 12 + int.from_bytes(buffer[4:12], "big") - len(buffer))
        return max(READ_BYTES, 4 + size - len(buffer))

    @property
    def partial(self) -> bool:
        """Whether part of a message has been read and the rest not yet."""
        return bool(self._buffer)

    def messages(self, data: bytes) -> list[bytes]:
        """The messages ``data`` completes, in order; the rest is kept for the next read."""
        if not self._buffer and len(data) >= 4:  # the usual case: one whole message, read at once
            size = int.from_bytes(data[:4], "big", signed=True)
            if len(data) == 4 + size:
                return [data[4:]]
        buffer = self._buffer
        buffer += data
        found = []
        while len(buffer) >= 4:
            size, start = int.from_bytes(buffer[:4], "big", signed=True), 4
            if size == -1:
                if len(buffer) < 12:
                    break
                size, start = int.from_bytes(buffer[4:12], "big"), 12
            if len(buffer) < start + size:
                break
            found.append(bytes(buffer[start : start + size]))
            del buffer[: start + size]
        return found


def _reference(function: Callable[..., Any]) -> bytes:
    """``function`` pickled, behind its length: the head of every request that calls it."""
    pickled = pickle.dumps(function, pickle.HIGHEST_PROTOCOL)
    return len(pickled).to_bytes(4, "big") + pickled


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
    """A pool process, the parent's end of its pipe, and the calls waiting for its replies."""

    def __init__(
        self, context: BaseContext, initializer: Callable[[], None] | None, cpu: int | None, batch: bool
    ) -> None:
        self.connection, child_end = context.Pipe()
        self.fd = self.connection.fileno()  # what the loop watches, known even once the pipe is closed
        self.process = context.Process(target=_serve, args=(child_end, initializer, cpu, batch), daemon=True)
        self.process.start()
        child_end.close()
        # The calls whose request is written and whose reply is not read yet, oldest first: a
        # future for the reply and the request's size (with MESSAGE_OVERHEAD) each.
        self.waiting: deque[tuple[Future[bytes], int]] = deque()
        self.queued_bytes = 0
        self.loop: AbstractEventLoop | None = None  # whose reader callback reads the replies
        self.exited = False  # its pipe read EOF while no call waited: the next call finds it dead
        self.frames = Frames()  # what has been read of its replies
        self.lost = False  # exited or killed (and replaced): the replies not read yet will not come

    def forget_reader(self) -> None:
        """Take the pipe off the loop that reads it (a loop already closed has nothing to take off)."""
        if self.loop is not None:
            with contextlib.suppress(Exception):
                self.loop.remove_reader(self.fd)
            self.loop = None

    def kill(self) -> None:
        """Kill the process and close the pipe, as a crash would (for tests)."""
        self.process.kill()
        self.process.join()
        self.connection.close()

    def stop(self, timeout: float = 2.0) -> None:
        self.forget_reader()
        with contextlib.suppress(OSError):
            self.connection.send_bytes(_STOP)
        self.process.join(timeout)
        if self.process.is_alive():
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

    Not thread-safe: use it from one asyncio event loop.  ``close()`` stops every process
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
        self._references: dict[Callable[..., Any], bytes] = {}  # plain functions' request heads
        self._workers = [self._start(slot) for slot in range(processes)]

    def _start(self, slot: int) -> _Worker:
        return _Worker(self._context, self._initializer, self._cpus[slot], self._batch)

    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    async def call(self, index: int, function: Callable[..., Any], *args: Any) -> Any:
        """Run ``function(*args)`` in process ``index % processes`` and return its result.

        The request is written at once, behind the requests that process has not
        answered yet (unless they fill ``QUEUE_BYTES``: then it waits for their
        replies first), and the reply comes after theirs.  Re-raises the
        function's exception.  Raises ``ProcessDied`` if the process exits before
        answering (or had exited since its last call), ``RequestLost`` (a
        ``ProcessDied``) if the request was queued on a process that another call
        found dead or that was killed because another call queued on it was
        cancelled.  On cancellation after the request was written and before the
        reply came, the process is killed and replaced (once, however many of
        its calls are cancelled); the call has no effect beyond what the function
        already did.  Runs under asyncio only (the runtime's loop).
        """
        slot = index % len(self._workers)
        head = self._references.get(function)
        if head is None:
            head = _reference(function)
            if type(function) is types.FunctionType:  # one object for the process' life: kept
                self._references[function] = head
        request = head + pickle.dumps(args, pickle.HIGHEST_PROTOCOL)
        size = len(request) + MESSAGE_OVERHEAD
        worker = self._workers[slot]
        while worker.waiting and worker.queued_bytes + size > QUEUE_BYTES:
            await asyncio.wait([worker.waiting[-1][0]])  # the calls queued now have their replies
            worker = self._workers[slot]
        if worker.exited:
            raise self._lost(slot, worker)
        try:
            # A process that died while idle shows here (the write fails) or when its pipe reads EOF.
            worker.connection.send_bytes(request)
        except OSError:
            raise self._lost(slot, worker) from None
        loop = get_running_loop()
        if worker.loop is not loop:  # its first call (or the first under this loop)
            worker.forget_reader()
            loop.add_reader(worker.fd, self._reply_came, slot, worker)
            worker.loop = loop
        reply: Future[bytes] = loop.create_future()
        worker.waiting.append((reply, size))
        worker.queued_bytes += size
        try:
            message = await reply
        except CancelledError:
            if reply.cancelled():  # its late answer would go to the next call: the process goes
                self._end(slot, worker)
            raise
        ok, value = pickle.loads(message)
        if not ok:
            raise value
        return value

    def _reply_came(self, slot: int, worker: _Worker) -> None:
        """The loop's reader callback: the pipe of ``worker`` can be read -- replies, part of one, or EOF."""
        try:
            data = os.read(worker.fd, worker.frames.wanted())
        except OSError:
            data = b""
        if not data:
            worker.forget_reader()
            if not worker.waiting:
                worker.exited = True  # died while idle: the next call finds it dead
                return
            reply, size = worker.waiting.popleft()  # the call it was answering: ProcessDied
            worker.queued_bytes -= size
            if not reply.done():
                reply.set_exception(_died(worker))
            self._end(slot, worker)  # the calls queued behind it: RequestLost, after it
            return
        for message in worker.frames.messages(data):
            if not worker.waiting:  # an answer nobody asked for: the process is not ours to trust
                self._end(slot, worker)
                return
            reply, size = worker.waiting.popleft()
            worker.queued_bytes -= size
            if not reply.done():  # not cancelled meanwhile
                reply.set_result(message)

    def _lost(self, slot: int, worker: _Worker) -> ProcessDied:
        """The error of a call that found ``worker``'s process gone, which is replaced if it is not yet."""
        error = _request_lost(worker) if worker.lost else _died(worker)
        self._end(slot, worker)
        return error

    def _end(self, slot: int, worker: _Worker) -> None:
        """Kill ``worker``'s process (once, unless it has exited), fail the calls still waiting on it
        with ``RequestLost``, close its pipe and start a fresh process in its slot (unless done already)."""
        if not worker.lost:
            worker.lost = True
            if worker.process.is_alive():
                worker.process.kill()
            worker.process.join()
            worker.forget_reader()
            worker.connection.close()
        while worker.waiting:
            reply, _ = worker.waiting.popleft()
            if not reply.done():
                reply.set_exception(_request_lost(worker))
        worker.queued_bytes = 0
        if self._workers[slot] is worker:
            self._workers[slot] = self._start(slot)

    def close(self) -> None:
        for worker in self._workers:
            worker.stop()


def _died(worker: _Worker) -> ProcessDied:
    worker.process.join(1.0)  # its exit code
    return ProcessDied(f"worker process {worker.process.pid} exited (code {worker.process.exitcode})")


def _request_lost(worker: _Worker) -> RequestLost:
    return RequestLost(f"worker process {worker.process.pid} was lost with this request")


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
    fd, frames = connection.fileno(), Frames()
    requests: deque[bytes] = deque()  # read, not served yet: the parent may queue several
    functions: dict[bytes, Callable[..., Any]] = {}
    while True:
        try:
            while not requests:
                data = os.read(fd, frames.wanted())
                if not data:
                    raise EOFError
                requests.extend(frames.messages(data))
        except (EOFError, OSError):
            break
        request = requests.popleft()
        if request == _STOP:
            break
        try:
            end = 4 + int.from_bytes(request[:4], "big")
            reference = request[4:end]
            function = functions.get(reference)
            if function is None:
                function = pickle.loads(reference)
                if len(functions) < FUNCTIONS:
                    functions[reference] = function
            reply = (True, function(*pickle.loads(request[end:])))
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
