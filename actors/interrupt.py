"""How a pass stops early: by cancel scopes and task groups, and one question between rounds.

- A signal (SIGINT, SIGTERM) between passes cancels the run's task group at once
  (``watch_signals``).
- The first signal during a pass lets the round in progress finish and be merged,
  and the pass stops at that consistent point.  Synchronous rounds: the coordinator
  asks ``requested`` before it starts each round — the only moment it is not
  inside one (one question costs nothing, where a shielded cancel scope a round
  cost ~60 µs of each round's critical path).  Async rounds: the signal cancels the
  sender's scope (``between_rounds``), and the receiver, shielded, merges the
  slices in flight.
- A second signal cancels the rounds' scope (``rounds``): the
  coordinator puts the main connectome back as it was when the round began and the
  pass stops at once.
- A worker's error ends the round too (``failure_ends_round``): its report will never
  come; the error then cancels the pass' task group (async rounds: the receiver's
  shield keeps that out, so the error cancels the receiver's scope itself) and comes
  out alone.

Either way the pass reports how far it got, and the runner saves a checkpoint from there.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import anyio


def quiet_signals() -> None:
    """From now on SIGINT and SIGTERM are ignored: called when the run's signal watcher ends.

    What is left then -- the event loop's end, the pool shut down, shared memory
    removed, the log closed, the message printed -- takes a moment and ends the process
    anyway; a signal (a second Ctrl-C pressed in that moment) must neither cut it short
    nor end in a traceback.  The command line puts the handlers back when the command
    returns (for in-process callers).
    """
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)


class Interrupt:
    """Shared by the signal watcher (which calls ``request``) and the coordinator (which opens the scopes)."""

    def __init__(self) -> None:
        self.signal: int | None = None
        # Set by a command whose process ends with the run: once the watcher is gone, signals are
        # ignored (``quiet_signals``) instead of being Python's KeyboardInterrupt again.
        self.quiet_after = False
        self.abandon = False
        self._between: anyio.CancelScope | None = None
        self._round: anyio.CancelScope | None = None
        self._pass_running = False

    @property
    def requested(self) -> bool:
        return self.signal is not None

    @property
    def exit_code(self) -> int:
        """128 + the signal number: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + (self.signal or signal.SIGINT)

    def request(self, signum: int) -> None:
        """First call: stop after the current round.  Later calls: abandon the round."""
        if self.signal is None:
            self.signal = signum
            if self._between is not None:
                self._between.cancel()
        else:
            self.abandon = True
            for scope in (self._round, self._between):
                if scope is not None:
                    scope.cancel()

    async def watch_signals(
        self, run_scope: anyio.CancelScope, on_signal: Callable[[str, bool, bool], None]
    ) -> None:
        """Turn SIGINT/SIGTERM into requests until cancelled; between passes, cancel ``run_scope``.

        ``on_signal(name, first, during_pass)`` hears of every signal before it takes effect.
        """
        try:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for signum in signals:
                    first = not self.requested
                    self.request(signum)
                    on_signal(signal.Signals(signum).name, first, self._pass_running)
                    if not self._pass_running:
                        run_scope.cancel()
        finally:
            if self.quiet_after:
                quiet_signals()  # the receiver's end put back the handler that raises KeyboardInterrupt

    @contextmanager
    def running_pass(self) -> Iterator[None]:
        """While a pass runs, a signal stops it after a round instead of cancelling the run."""
        self._pass_running = True
        try:
            yield
        finally:
            self._pass_running = False

    @contextmanager
    def failure_ends_round(self) -> Iterator[None]:
        """Around a worker actor: its error cancels the rounds' scope waiting for its report."""
        try:
            yield
        except Exception:
            self.end_round()
            raise

    def end_round(self) -> None:
        """A worker failed: its report will never come, so the round in progress is cancelled.

        The async receiver's shield keeps out the task group's own cancellation; without
        this it would wait for that report forever (synchronous rounds are not shielded:
        the task group's cancellation reaches them too).
        """
        if self._round is not None:
            self._round.cancel()

    @contextmanager
    def between_rounds(self) -> Iterator[anyio.CancelScope]:
        """The async sender's scope: cancelled by the first request (no slice is sent after it)."""
        with anyio.CancelScope() as scope:
            self._between = scope
            if self.requested:
                scope.cancel()
            try:
                yield scope
            finally:
                self._between = None

    @contextmanager
    def rounds(self, *, shielded: bool) -> Iterator[anyio.CancelScope]:
        """The scope of a pass' rounds, cancelled by the second request and a worker's error (``end_round``).

        Synchronous rounds (not ``shielded``): the first request does not cancel it
        either; the coordinator asks ``requested`` before each round, so the round in
        progress finishes and is merged.  The receiver of async rounds (``shielded``):
        kept out of the first request's cancellation of the sender (``between_rounds``)
        and of the task group's, it merges the slices in flight.
        """
        with anyio.CancelScope(shield=shielded) as scope:
            self._round = scope
            if self.abandon:
                scope.cancel()
            try:
                yield scope
            finally:
                self._round = None
