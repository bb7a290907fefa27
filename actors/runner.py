"""Running a batch: pass after pass — prepare, run through the coordinator, record.

What lives across passes is the workspace's (``actors.workspace``: executor, arena,
arrays) and the networks' (``actors.networks``: which network a pass starts from);
what a pass leaves is written by ``actors.records``; how it stops early is
``actors.interrupt``'s.  The loop only calls them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import anyio
import numpy as np

from actors.batchfile.parse import Batch, Pass
from actors.batchfile.preflight import preflight
from actors.clock import now
from actors.console import Screen, pass_summary
from actors.coordinator import PassOutcome, run_pass
from actors.exceptions import PassHalted, single_error
from actors.executors.executor import start_early
from actors.interrupt import Interrupt
from actors.networks import TEST_ERRORS, Networks, error_history, trained
from actors.records import pass_events
from actors.records.checkpoints import checkpoint_path, find_checkpoint, save_checkpoint
from actors.records.journal import Journal, versions
from actors.records.lock import RunLocks, files_to_lock
from actors.records.results import row_of_pass
from actors.records.write_order import recover, write_records
from actors.setup_time import Laps, collector_paused, process_age
from actors.workspace import Workspace
from brain.atomic import output_problem
from brain.errors import UserError
from brain.layout import load_layout, with_bias
from brain.merge import warm_up as warm_up_merges


class Interrupted(UserError):
    """A signal stopped the run; ``exit_code`` is 128 + the signal number."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Runner:
    """Runs the passes of a batch in order; use as a context manager (closes pool, arena, locks).

    ``overrides`` are the command line's ``Key: value`` lines, already applied to the
    batch by the parser; the runner only records them in the log.
    """

    def __init__(self, journal: Journal, screen: Screen, overrides: Sequence[str] = ()) -> None:
        self.journal = journal
        self.screen = screen
        self.overrides = list(overrides)
        self.workspace = Workspace(on_event=journal.event)
        self.networks = Networks(Path("batch.txt"))
        self.interrupt = Interrupt()
        self.outcomes: list[tuple[Pass, PassOutcome]] = []
        self._locks = RunLocks()
        self._resume_at: tuple[int, int] = (0, 0)
        self._last_checkpoint: Path | None = None
        self._resume_hint = ""
        self._setup_before: dict[str, float] = {}  # the run's own setup, counted in its first pass'

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.workspace.close()
        self._locks.release()

    async def run(self, batch: Batch, resume: bool = False) -> None:
        """Run every pass of ``batch`` (from an interrupted pass on, with ``resume``).

        A user error stops the batch with nothing half-written; whatever a pass could
        refuse (``actors.batchfile.preflight``) is refused before the first pass.  SIGINT
        or SIGTERM stops the pass in progress after its current round (a second one
        abandons the round), saves a checkpoint and raises ``Interrupted``.  Before the
        first pass it locks every PersistenceFile and ResultFile of the batch until
        ``close``: a file another run holds is a ``UserError``, raised before anything
        is written.
        """
        imports = process_age()  # the interpreter, the imports, the batch file, the event loop
        startup = Laps()
        with collector_paused():
            start_early(p.settings.executor for p in batch.passes)  # a pool's server loads its kernels now
            startup.lap("pool_server")
            warm_up_merges()  # the coordinator's kernels, before any pass is timed
            startup.lap("kernels")
        # An output the pre-flight refuses is not locked (its lock file may not be possible either):
        # nothing is written there, and the refusal below names its batch line.
        self._locks.acquire(path for path in files_to_lock(batch) if output_problem(path) is None)
        root = f" --root {batch.root}" if batch.root is not None else ""
        self._resume_hint = f"python -m actors run {batch.path}{root} --resume"
        self.networks.batch_path = batch.path
        self.journal.event(
            "run_start", batch=str(batch.path), passes=len(batch.passes), versions=versions(),
            overrides=self.overrides, pid=os.getpid(), resume=resume,
            process_seconds=process_age(), startup_parts={"imports": imports, **startup.parts},
        )  # fmt: skip
        checks = Laps()
        for finished in recover(files_to_lock(batch)):  # what a killed run left, now that it is ours
            self.screen.line(finished, style="dim")
            self.journal.event("recovered", message=finished)
        if resume:
            self._resume_at = find_checkpoint(batch.passes, batch.path, self.journal.event)
        # Whatever a pass could refuse is refused now, before the first pass trains anything.
        to_run = batch.passes[max(self._resume_at[0], 1) - 1 :]
        self.workspace.loaded = dict(preflight(replace(batch, passes=to_run), keep_data=True).datasets)
        checks.lap("preflight")  # the files checked, the data sets read
        self._setup_before = checks.parts
        with single_error():
            async with anyio.create_task_group() as group:
                group.start_soon(self.interrupt.watch_signals, group.cancel_scope, self._on_signal)
                await self._run_passes(batch.passes)
                group.cancel_scope.cancel()
        self.workspace.loaded.clear()
        if self.interrupt.requested:
            raise Interrupted(self._interrupted_message(), self.interrupt.exit_code)

    async def _run_passes(self, passes: Sequence[Pass]) -> None:
        for index, batch_pass in enumerate(passes, start=1):
            for repetition in range(1, batch_pass.count + 1):
                if (index, repetition) < self._resume_at:
                    continue
                await self.run_pass(batch_pass, index, repetition)
                if self.interrupt.requested:
                    return

    async def run_pass(self, batch_pass: Pass, index: int, repetition: int) -> PassOutcome:
        """Prepare the pass, run it through the coordinator, and record it (or its checkpoint)."""
        setup = Laps()
        training = batch_pass.mode == "train"
        layout = with_bias(load_layout(batch_pass.settings.network_file), batch_pass.settings.bias)
        resuming = (index, repetition) == self._resume_at
        network = self.networks.for_pass(batch_pass, layout, resuming)
        setup.lap("network")
        epoch = network.epoch + 1 if training else network.epoch
        prepared = await self.workspace.prepare(
            batch_pass, layout, network, self.networks.lineage, self.interrupt, setup
        )
        # The first pass of a run counts the run's pre-flight too: it read the pass' data set.
        setup_parts, self._setup_before = {**self._setup_before, **setup.parts}, {}
        setup_seconds = sum(setup_parts.values())
        origin = self.networks.origin
        clock = now()  # the pass' moments are logged relative to this
        pass_events.pass_start(
            self.journal, batch_pass, index, repetition, epoch, layout, prepared, setup_parts, origin, clock
        )
        title = f"Train {epoch}" if training else "Test"
        self.screen.line(f"{title}: {origin}", style="dim")
        with self.screen.progress(title, prepared.plan.lines, not training) as advance:
            log_round = pass_events.RoundLog(self.journal, index, clock)

            def on_round(record) -> None:
                advance(record.lines_done, record.correct)
                log_round(record)

            try:
                with log_round, self.interrupt.running_pass():
                    outcome = await run_pass(prepared.plan, prepared.executor, on_round)
            except UserError as error:
                if isinstance(error, PassHalted):  # its whole rounds stand: saved as after an interrupt
                    self._halted(error, batch_pass, network, index, repetition, epoch)
                self.journal.error("pass_failed", index=index, mode=batch_pass.mode, error=str(error))
                raise
        pass_events.pass_statistics(self.journal, index, outcome, clock)
        if training:
            network = trained(network, outcome, batch_pass, epoch, self.workspace.optimizer_to_save())
        if outcome.stopped:
            self._checkpoint(batch_pass, network, index, repetition, epoch)
            return outcome
        if resuming and batch_pass.settings.persistence_file is None:
            checkpoint_path(batch_pass, self.networks.batch_path).unlink(missing_ok=True)
        self._record(
            batch_pass, network, outcome, prepared.executor.name, setup_seconds, epoch, index, repetition
        )
        return outcome

    def _record(self, batch_pass, network, outcome, executor, setup, epoch, index, repetition) -> None:
        """Write a finished pass' persistence file and result row (in the order a kill cannot break)."""
        totals = network.total_seconds, network.total_lines
        row = row_of_pass(batch_pass, executor, *totals, outcome, setup, epoch)
        if batch_pass.mode == "test" and row.error_rate is not None:
            errors = np.array([*error_history(network), row.error_rate])
            network = replace(network, extra={**network.extra, TEST_ERRORS: errors})
        persistence_file = batch_pass.settings.persistence_file if batch_pass.mode == "train" else None
        written = write_records(persistence_file, network, batch_pass.settings.result_file, row)
        self.networks.keep(written, persistence_file)
        if persistence_file is not None:
            self.journal.event("persistence_written", index=index, path=str(persistence_file))
        pass_events.pass_end(self.journal, batch_pass, index, repetition, epoch, outcome, row)
        self.screen.line(pass_summary(batch_pass.mode, epoch, outcome, row))
        self.outcomes.append((batch_pass, outcome))

    def _halted(
        self, error: PassHalted, batch_pass: Pass, network, index: int, repetition: int, epoch: int
    ) -> None:
        """Save the checkpoint of a pass the executor halted, and say in ``error`` where it is."""
        if batch_pass.mode == "train":
            network = trained(network, error.outcome, batch_pass, epoch, self.workspace.optimizer_to_save())
        self._checkpoint(batch_pass, network, index, repetition, epoch)
        error.message += f"; checkpoint saved to {self._last_checkpoint}; resume with: {self._resume_hint}"

    def _checkpoint(self, batch_pass: Pass, network, index: int, repetition: int, epoch: int) -> None:
        """Save where an interrupted pass got to: weights after its last whole round, lines done."""
        path = checkpoint_path(batch_pass, self.networks.batch_path)
        saved = save_checkpoint(path, network, batch_pass, index, repetition)
        self.networks.keep(saved, path)
        self._last_checkpoint = path
        self.journal.event(
            "checkpoint_written", index=index, repetition=repetition, path=str(path), epoch=epoch,
            epoch_lines_done=saved.epoch_lines_done, mode=batch_pass.mode,
        )  # fmt: skip

    def _on_signal(self, name: str, first: bool, during_pass: bool) -> None:
        self.journal.event("signal", signal=name, first=first)
        if during_pass:
            self.screen.line(
                f"{name}: finishing the current round, then saving a checkpoint (again to abandon the round)"
                if first else f"{name}: abandoning the round",
                style="yellow",
            )  # fmt: skip

    def _interrupted_message(self) -> str:
        if self._last_checkpoint is None:
            return "interrupted between passes; the passes before were saved as usual"
        return f"interrupted; checkpoint saved to {self._last_checkpoint}; resume with: {self._resume_hint}"
