"""A pool of worker processes driven straight from the event loop, one pipe each.

``concurrent.futures.ProcessPoolExecutor`` moves every call through a queue
feeder thread and a management thread before the event loop hears of the
result: on this project's 2-core machine that costs 0.25-1 ms per step, which a
round of the thesis pays once per slice.  Here the event loop writes the request
into the process' pipe itself and waits for the pipe to become readable
(``anyio.wait_readable``): about 0.04 ms.  ``Executor: processpool`` keeps the
standard library's pool for comparison.

Each process serves one call at a time.  A process that dies mid-call (killed,
out of memory, a crash in native code) surfaces as ``ProcessDied``; the pool
replaces it before the next call.  A call cancelled while its process computes
kills that process (its late answer would otherwise be read by the next call)
and a fresh one takes its place.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from typing import Any

import anyio


class ProcessDied(Exception):
    """The process running a call exited before answering."""


class _Worker:
    def __init__(self, context: BaseContext, initializer: Callable[[], None] | None) -> None:
        self.connection, child_end = context.Pipe()
        self.process = context.Process(target=_serve, args=(child_end, initializer), daemon=True)
        self.process.start()
        child_end.close()

    def stop(self, timeout: float = 2.0) -> None:
        with contextlib.suppress(OSError):
            self.connection.send(None)
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
    """``processes`` long-lived processes; ``await pool.call(fn, *args)`` runs fn in a free one.

    Not thread-safe: use it from one event loop.  ``close()`` stops every process
    (idempotent, never raises).
    """

    def __init__(
        self, processes: int, context: BaseContext, initializer: Callable[[], None] | None = None
    ) -> None:
        self._context = context
        self._initializer = initializer
        self._idle = [_Worker(context, initializer) for _ in range(processes)]
        self._slots = anyio.Semaphore(processes)
        self._busy: set[_Worker] = set()

    def pids(self) -> list[int]:
        return [w.process.pid for w in (*self._idle, *self._busy) if w.process.pid is not None]

    async def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run ``function(*args)`` in a free process and return its result.

        Waits for a free process first.  Re-raises the function's exception.
        Raises ``ProcessDied`` if the process exits before answering.  On
        cancellation the process is killed and replaced; the call has no effect
        beyond what the function already did.
        """
        async with self._slots:
            worker = self._idle.pop()
            if not worker.process.is_alive():
                worker.connection.close()
                worker = _Worker(self._context, self._initializer)
            self._busy.add(worker)
            healthy = False
            try:
                worker.connection.send((function, args))
                await anyio.wait_readable(worker.connection.fileno())
                ok, value = worker.connection.recv()
                healthy = True
            except (EOFError, OSError, BrokenPipeError):
                worker.process.join(1.0)
                raise ProcessDied(
                    f"worker process {worker.process.pid} exited (code {worker.process.exitcode})"
                ) from None
            finally:
                self._busy.discard(worker)
                if not healthy:
                    if worker.process.is_alive():
                        worker.kill()
                    else:
                        worker.connection.close()
                    worker = _Worker(self._context, self._initializer)
                self._idle.append(worker)
            if not ok:
                raise value
            return value

    def close(self) -> None:
        for worker in (*self._idle, *self._busy):
            worker.stop()
        self._idle.clear()
        self._busy.clear()


def _serve(connection: Connection, initializer: Callable[[], None] | None) -> None:
    """The loop of a pool process: one call at a time until told to stop or the parent goes."""
    if initializer is not None:
        initializer()
    while True:
        try:
            request = connection.recv()
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
            connection.send(reply)
        except (OSError, BrokenPipeError):
            break
    connection.close()
    os._exit(0)
