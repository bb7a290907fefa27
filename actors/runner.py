"""Running a batch: pass after pass, each through the coordinator, with persistence and results.

The runner owns what lives across passes: the executor (kept while Executor and
Parallel stay the same), the shared-memory arena with the data sets already
loaded, the network trained so far, and the run's journal.
"""

from __future__ import annotations

import math
import os
import signal
import time
from dataclasses import dataclass, replace
from pathlib import Path

import anyio
import numpy as np
from rich.text import Text

from actors.batchfile.parse import Batch, Pass, checkpoint_path
from actors.batchfile.preflight import DataKey, preflight
from actors.batchfile.settings import Settings
from actors.console import Screen, short_path
from actors.coordinator import PassOutcome, PassPlan, RoundRecord, run_pass
from actors.exceptions import PassHalted, single_error
from actors.executors.arena import Arena, ArraySpec
from actors.executors.executor import Executor, make_executor
from actors.executors.step import Workload, warm_up, warm_up_modern
from actors.interrupt import Interrupt
from actors.records.journal import Journal, versions
from actors.records.lock import RunLocks, files_to_lock
from actors.records.results import ResultRow
from actors.records.write_order import recover, write_records
from actors.vocabulary import Rounds
from brain.data import Dataset, Targets, interpret_targets, load_dataset
from brain.errors import DataError, DivergenceError, UserError
from brain.hyper import Hyper
from brain.layout import Layout, load_layout
from brain.modern import initial_weights, replica_state, state_to_save, with_bias
from brain.persistence import Persisted, load_persistence, persistence_exists, save_persistence
from brain.step import Math

TEST_ERRORS = "test_errors"  # Persisted.extra: the error rate of every test pass, for Plateau


def _test_errors(network: Persisted) -> list[float]:
    return [float(x) for x in network.extra.get(TEST_ERRORS, ())]


class Interrupted(UserError):
    """A signal stopped the run; ``exit_code`` is 128 + the signal number."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class SharedData:
    """A data set in the arena."""

    lines: int
    inputs: ArraySpec
    labels: ArraySpec
    direct: ArraySpec
    order: ArraySpec
    order_array: np.ndarray


def share_dataset(arena: Arena, name: str, dataset, targets: Targets) -> SharedData:
    """Put a data set, its interpreted targets and an order (0, 1, …, to be filled) in the arena."""
    _, inputs = arena.share(f"{name}-inputs", dataset.inputs)
    _, labels = arena.share(f"{name}-labels", targets.labels)
    _, direct = arena.share(f"{name}-direct", targets.direct)
    order, order_spec = arena.share(f"{name}-order", np.arange(len(dataset), dtype=np.int64))
    return SharedData(len(dataset), inputs, labels, direct, order_spec, order)


class Runner:
    """Runs the passes of a batch in order; use as a context manager (closes pool and arena)."""

    def __init__(self, journal: Journal, screen: Screen, overrides: dict | None = None) -> None:
        self.journal = journal
        self.screen = screen
        self.overrides = overrides or {}
        self.arena = Arena()
        warm_up()  # the merge and the inline/thread executors' kernels, before any pass is timed
        self.executor: Executor | None = None
        self._executor_key: tuple | None = None
        self.network: Persisted | None = None
        self._network_key: tuple | None = None
        self._datasets: dict[tuple, SharedData] = {}
        self._weights: dict[tuple[int, int], tuple] = {}
        self.outcomes: list[tuple[Pass, PassOutcome]] = []
        self.interrupt = Interrupt()
        self._modern_ready: set = set()
        self._locks: RunLocks | None = None
        self._pass_running = False
        self._last_checkpoint: Path | None = None
        self._batch_path = Path("batch.txt")
        # Each replica's optimizer state in the arena: (key, {name: (array, spec)}, (steps, spec)).
        self._optimizer: tuple | None = None
        self._optimizer_count = 0
        self._resume_at: tuple[int, int] = (0, 0)
        self._checkpoint_hint = ""
        # Where self.network was read from or last written to (None: fresh or in memory only).
        self._network_path: Path | None = None
        self.network_origin = ""
        # Bumped whenever a pass starts from a network other than the one in memory, so that
        # optimizer state in the arena is never carried from one experiment into the next.
        self._lineage = 0
        self._optimizer_lineage = -1
        self._loaded: dict[DataKey, Dataset] = {}  # data sets the pre-flight read, until shared

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.executor is not None:
            self.executor.close()
            self.executor = None
        self.arena.close()
        if self._locks is not None:
            self._locks.release()

    async def run(self, batch: Batch, resume: bool = False) -> None:
        """Run every pass of ``batch`` (from an interrupted pass on, with ``resume``).

        A user error stops the batch with nothing half-written; whatever a pass could
        refuse (``actors.batchfile.preflight``) is refused before the first pass.  SIGINT or SIGTERM
        stops the pass in progress after its current round (a second one abandons the
        round), saves a checkpoint and raises ``Interrupted``.  Before the first pass
        it locks every PersistenceFile and ResultFile of the batch until ``close``: a
        file another run holds is a ``UserError``, raised before anything is written.
        """
        self._locks = self._locks or RunLocks()
        self._locks.acquire(files_to_lock(batch))
        root = f" --root {batch.root}" if batch.root is not None else ""
        self._checkpoint_hint = f"python -m actors run {batch.path}{root} --resume"
        self._batch_path = batch.path
        self.journal.event(
            "run_start", batch=str(batch.path), passes=len(batch.passes), versions=versions(),
            overrides=self.overrides, pid=os.getpid(), resume=resume,
        )  # fmt: skip
        for finished in recover(files_to_lock(batch)):  # what a killed run left, now that it is ours
            self.screen.line(finished, style="dim")
            self.journal.event("recovered", message=finished)
        passes = [replace(p, settings=_override(p.settings, self.overrides)) for p in batch.passes]
        if resume:
            self._resume_at = self._find_checkpoint(passes, batch)
        # Whatever a pass could refuse is refused now, before the first pass trains anything.
        to_run = passes[max(self._resume_at[0], 1) - 1 :]
        self._loaded = dict(preflight(replace(batch, passes=tuple(to_run)), keep_data=True).datasets)
        with single_error():
            async with anyio.create_task_group() as group:
                group.start_soon(self._watch_signals, group.cancel_scope)
                await self._run_passes(passes)
                group.cancel_scope.cancel()
        self._loaded.clear()
        if self.interrupt.requested:
            raise Interrupted(self._interrupted_message(), self.interrupt.exit_code)

    async def _run_passes(self, passes: list[Pass]) -> None:
        for index, batch_pass in enumerate(passes, start=1):
            for repetition in range(1, batch_pass.count + 1):
                if (index, repetition) < self._resume_at:
                    continue
                await self.run_pass(batch_pass, index, repetition)
                if self.interrupt.requested:
                    return

    async def _watch_signals(self, run_scope: anyio.CancelScope) -> None:
        """Turn SIGINT/SIGTERM into interrupt requests; between passes, stop at once."""
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                first = not self.interrupt.requested
                self.interrupt.request(signum)
                name = signal.Signals(signum).name
                self.journal.event("signal", signal=name, first=first)
                if self._pass_running:
                    self.screen.line(
                        f"{name}: finishing the current round, then saving a checkpoint "
                        "(again to abandon the round)" if first else
                        f"{name}: abandoning the round",
                        style="yellow",
                    )  # fmt: skip
                else:
                    run_scope.cancel()

    def _interrupted_message(self) -> str:
        where = self._last_checkpoint
        if where is None:
            return "interrupted between passes; the passes before were saved as usual"
        return f"interrupted; checkpoint saved to {where}; resume with: {self._checkpoint_hint}"

    def _find_checkpoint(self, passes: list[Pass], batch: Batch) -> tuple[int, int]:
        """The (pass, repetition) an interrupted run stopped in, from its checkpoint."""
        for batch_pass in passes:
            path = checkpoint_path(batch_pass, batch.path)
            if persistence_exists(path):
                stored = load_persistence(path)
                if stored.batch_pass > 0:
                    self.journal.event(
                        "resume", checkpoint=str(path), batch_pass=stored.batch_pass,
                        repetition=stored.batch_repetition, epoch_lines_done=stored.epoch_lines_done,
                    )  # fmt: skip
                    return stored.batch_pass, stored.batch_repetition
        raise UserError(
            "nothing to resume: no persistence file of this batch records an interrupted pass",
            where=batch.path, allowed="--resume after a run of this batch was interrupted",
        )

    async def run_pass(self, batch_pass: Pass, index: int, repetition: int) -> PassOutcome:
        settings = batch_pass.settings
        training = batch_pass.mode == "train"
        began = time.perf_counter()
        layout = with_bias(load_layout(settings.network_file), settings.bias)
        resuming = (index, repetition) == self._resume_at
        network = self._network_for(settings, layout, training, batch_pass, resuming)
        executor = self._executor_for(settings)
        data_file = settings.train_file if training else settings.test_file
        labels = settings.train_labels if training else settings.test_labels
        shared = self._data_for(data_file, labels, settings, layout)
        epoch = network.epoch + 1 if training else network.epoch
        start_line = network.epoch_lines_done if training else 0
        if training:
            _fill_order(shared.order_array, settings, epoch)
        main, main_spec, replicas, replicas_spec, state, starts = self._weights_for(layout, settings.parallel)
        # The snapshot a lost slice restarts from: the round's (sync) or each worker's start (async).
        state, state_spec = starts if settings.rounds is Rounds.ASYNC else state
        main[:] = network.weights
        history = _test_errors(network)
        learning_rate = settings.learning_rate_schedule().rate(settings.learning_rate, epoch - 1, history)
        hyper = Hyper(learning_rate, settings.lambda_, settings.preprocessing, settings.elu_alpha)
        modern = replace(settings.modern_hyper(), learning_rate=learning_rate) if settings.is_modern else None
        optimizer = await self._optimizer_for(settings, layout, network, executor) if modern else {}
        work = Workload(
            batch_pass.mode, shared.inputs, shared.labels, shared.direct, shared.order,
            main_spec, replicas_spec, Math(layout, modern or hyper), state=state_spec, **optimizer,
        )  # fmt: skip
        plan = PassPlan(
            batch_pass.mode, shared.lines, settings.parallel, settings.worker_batch,
            settings.effective_data_capacity, settings.effective_output_capacity, work, main, replicas,
            label=f"epoch {epoch}" if training else "the test pass", state=state,
            start_line=start_line, interrupt=self.interrupt, merge=settings.merge, rounds=settings.rounds,
        )  # fmt: skip
        await executor.prepare(work)  # e.g. Ray ships the data set: part of the setup, not of the pass
        setup = time.perf_counter() - began
        where = f"{batch_pass.where}:{batch_pass.line}"
        self.journal.event(
            "pass_start", index=index, repetition=repetition, mode=batch_pass.mode, epoch=epoch,
            where=where, data=str(data_file), lines=shared.lines, layout=layout.describe(),
            parallel=settings.parallel, worker_batch=settings.worker_batch, executor=executor.name,
            data_capacity=plan.data_capacity, output_capacity=plan.output_capacity,
            learning_rate=settings.learning_rate, lambda_=settings.lambda_,
            preprocessing=settings.preprocessing.name, seed=settings.seed,
            semantics=settings.semantics.recorded, learning_rate_now=learning_rate, merge=settings.merge,
            rounds=settings.rounds,
            setup_seconds=setup, start_line=start_line, network_from=self.network_origin,
        )  # fmt: skip
        title = f"{'Train' if training else 'Test'} {epoch if training else ''}".strip()
        self.screen.line(f"{title}: {self.network_origin}", style="dim")
        with self.screen.progress(title, shared.lines, not training) as advance:

            def on_round(record: RoundRecord) -> None:
                advance(record.lines_done, record.correct)
                if not self.journal.enabled:  # a round event costs 10-25 µs to build, even to drop
                    return
                self.journal.event(
                    "round", index=index, round=record.round, lines_done=record.lines_done,
                    seconds=record.seconds, overhead_seconds=record.overhead_seconds,
                    staleness=record.staleness,
                    merge_seconds=record.merge_seconds,
                    slices=[
                        {"worker": r.worker, "start": r.slice.start, "stop": r.slice.stop,
                         "compute_seconds": r.result.seconds, "waited_for_slice": r.waited_for_slice}
                        for r in record.reports
                    ],
                )  # fmt: skip

            self._pass_running = True
            try:
                outcome = await run_pass(plan, executor, on_round)
            except UserError as error:
                if isinstance(error, PassHalted):  # its whole rounds stand: saved as after an interrupt
                    self._save_checkpoint(batch_pass, network, main, error.outcome, index, repetition, epoch)
                    error.message += f"; checkpoint saved to {self._last_checkpoint}; resume with: "
                    error.message += self._checkpoint_hint
                self.journal.error("pass_failed", index=index, mode=batch_pass.mode, error=str(error))
                raise
            finally:
                self._pass_running = False
        for stats in outcome.channels:
            fields = stats.as_dict()
            self.journal.event("channel_stats", index=index, channel=fields.pop("name"), **fields)
        for tally in outcome.workers:
            self.journal.event("worker_stats", index=index, **tally.as_dict())
        if outcome.stopped:
            self._save_checkpoint(batch_pass, network, main, outcome, index, repetition, epoch)
            return outcome
        if resuming and settings.persistence_file is None:
            checkpoint_path(batch_pass, self._batch_path).unlink(missing_ok=True)
        if training:
            if not np.isfinite(main).all():
                raise DivergenceError(f"the weights are not finite after epoch {epoch}", where=where)
            network = replace(
                network, weights=main.copy(), total_lines=network.total_lines + outcome.lines,
                total_seconds=network.total_seconds + outcome.seconds, epoch=epoch, epoch_lines_done=0,
                shuffle_seed=settings.seed, elu_alpha=settings.elu_alpha,
                semantics=settings.semantics.recorded, preprocessing=settings.preprocessing, batch_pass=0,
                batch_repetition=0,
                extra=self._extra(network),
            )  # fmt: skip
        row = _result_row(batch_pass, settings, executor, network, outcome, setup, epoch)
        if not training and row.error_rate is not None:
            errors = np.array([*history, row.error_rate])
            network = replace(network, extra={**network.extra, TEST_ERRORS: errors})
        persistence_file = settings.persistence_file if training else None
        self.network = write_records(persistence_file, network, settings.result_file, row)
        if persistence_file is not None:
            self._network_path = persistence_file
            self.journal.event("persistence_written", index=index, path=str(persistence_file))
        self.journal.event(
            "pass_end", index=index, repetition=repetition, mode=batch_pass.mode, epoch=epoch,
            seconds=outcome.seconds, lines=outcome.lines, rounds=outcome.rounds,
            merge_seconds=outcome.merge_seconds, overhead_seconds=outcome.overhead_seconds,
            staleness_max=outcome.staleness_max, staleness_mean=outcome.staleness_mean,
            correct=row.correct, incorrect=row.incorrect,
            correct_percent=row.correct_percent, error_rate=row.error_rate,
            compute_seconds=sum(t.computing for t in outcome.workers),
        )  # fmt: skip
        self.screen.line(_summary(batch_pass.mode, epoch, outcome, row))
        self.outcomes.append((batch_pass, outcome))
        return outcome

    async def _optimizer_for(
        self, settings: Settings, layout: Layout, network: Persisted, executor: Executor
    ) -> dict:
        """Each replica's optimizer state in shared memory, from the network's saved state if any."""
        if executor not in self._modern_ready:
            await executor.everywhere(warm_up_modern)
            self._modern_ready.add(executor)
        # Arrays are made once per shape (what actors.batchfile.memory counts); a pass that starts from
        # another network than the one in memory (a new lineage) refills them from its saved state.
        key = (settings.optimizer, settings.parallel, layout.n_weights, settings.network_file)
        fresh = self._optimizer is None or self._optimizer[0] != key
        if fresh or self._optimizer_lineage != self._lineage:
            stacks, steps = replica_state(
                settings.optimizer, settings.parallel, layout.n_weights, network.extra
            )
            if fresh:
                name = f"optimizer{self._optimizer_count}"
                self._optimizer_count += 1
                shared = {key_: self.arena.share(f"{name}-{key_}", stack) for key_, stack in stacks.items()}
                self._optimizer = (key, shared, self.arena.share(f"{name}-steps", steps))
            else:
                _, shared, (shared_steps, _) = self._optimizer
                for name, (array, _) in shared.items():
                    array[:] = stacks[name]
                shared_steps[:] = steps
            self._optimizer_lineage = self._lineage
        _, shared, shared_steps = self._optimizer
        return {
            "optimizer_state": tuple((name, spec) for name, (_, spec) in shared.items()),
            "optimizer_steps": shared_steps[1],
        }

    def _extra(self, network: Persisted) -> dict[str, np.ndarray]:
        """What a training pass persists beside the weights: optimizer state and test errors."""
        extra = {TEST_ERRORS: np.array(_test_errors(network))}
        if self._optimizer is not None:
            _, shared, shared_steps = self._optimizer
            extra.update(state_to_save({n: array for n, (array, _) in shared.items()}, shared_steps[0]))
        return extra

    def _save_checkpoint(
        self, batch_pass: Pass, network: Persisted, main: np.ndarray, outcome: PassOutcome,
        index: int, repetition: int, epoch: int,
    ) -> None:  # fmt: skip
        """Save where an interrupted pass got to: weights after its last whole round, lines done."""
        training = batch_pass.mode == "train"
        if training:
            network = replace(
                network, weights=main.copy(), total_lines=network.total_lines + outcome.lines,
                total_seconds=network.total_seconds + outcome.seconds, epoch_lines_done=outcome.cursor,
                shuffle_seed=batch_pass.settings.seed, extra=self._extra(network),
            )  # fmt: skip
        # No row is written for a checkpoint: it records none (see actors/records/write_order.py).
        network = replace(
            network, batch_pass=index, batch_repetition=repetition, result_file="", result_row=""
        )
        path = checkpoint_path(batch_pass, self._batch_path)
        save_persistence(path, network)
        self.network = network
        self._network_path = path
        self._last_checkpoint = path
        self.journal.event(
            "checkpoint_written", index=index, repetition=repetition, path=str(path), epoch=epoch,
            epoch_lines_done=network.epoch_lines_done, mode=batch_pass.mode,
        )  # fmt: skip

    def _network_for(
        self, settings: Settings, layout: Layout, training: bool, batch_pass: Pass, resuming: bool
    ) -> Persisted:
        """The network a pass starts from, as the Go program chose it, and a note of where it came from.

        The PersistenceFile in force is read before every pass: a non-empty one is
        loaded; a missing one gives a training pass fresh weights drawn from Seed
        (a new experiment) and is an error for a test pass.  Only without any
        PersistenceFile does a pass continue the network trained before it in this run.
        """
        path = checkpoint_path(batch_pass, self._batch_path) if resuming else settings.persistence_file
        if path is not None and path == self._network_path and self.network is not None:
            # What this run wrote there itself, plus what test passes added since (test errors).
            network, origin = self.network, f"from {short_path(path)}, epoch {self.network.epoch}"
        elif path is not None and persistence_exists(path):
            network = load_persistence(path, expected_layout=layout)
            origin = f"from {short_path(path)}, epoch {network.epoch}"
            self._lineage += 1
        elif path is None and self.network is not None and self.network.layout == layout:
            network = self.network
            origin = f"the network trained above (in memory), epoch {network.epoch}"
        elif training:
            fresh = initial_weights(
                layout, settings.init, settings.seed, settings.min_weight, settings.max_weight
            )
            network = Persisted(
                layout, fresh, semantics=settings.semantics.recorded, elu_alpha=settings.elu_alpha,
                preprocessing=settings.preprocessing, shuffle_seed=settings.seed,
            )  # fmt: skip
            origin = f"fresh weights, seed {settings.seed}"
            self._lineage += 1
        elif path is not None:
            raise UserError(
                f"no persistence for testing found: PersistenceFile {path} does not exist",
                where=batch_pass.where, line=batch_pass.line,
                allowed="a PersistenceFile that exists, or a Train line with it before the Test line",
            )  # fmt: skip
        else:
            raise UserError(
                "a test pass needs a trained network, but there is no persistence file and "
                "nothing was trained before it",
                where=batch_pass.where, line=batch_pass.line,
                allowed="a PersistenceFile that exists, or a Train line before the Test line",
            )  # fmt: skip
        self.network = network
        self._network_path = path
        self.network_origin = origin
        return network

    def _executor_for(self, settings: Settings) -> Executor:
        key = (settings.executor, settings.parallel, settings.ray_address, settings.ray_placement,
               settings.pin_processes)
        if key != self._executor_key:
            if self.executor is not None:
                self.executor.close()
                self.executor = None
            self.executor = make_executor(
                settings.executor, settings.parallel, on_event=self.journal.event,
                ray_address=settings.ray_address, pin=settings.pin_processes,
                ray_placement=settings.ray_placement,
            )  # fmt: skip
            self._executor_key = key
        return self.executor

    def _data_for(self, path: Path, labels: Path | None, settings: Settings, layout: Layout) -> SharedData:
        key = (str(path), str(labels), settings.target_start, settings.target_end, layout.n_outputs)
        if key not in self._datasets:
            start, end = settings.target_start, settings.target_end
            dataset = self._loaded.pop((path, labels, start, end), None)
            if dataset is None:
                dataset = load_dataset(path, labels_path=labels, target_start=start, target_end=end)
            if dataset.inputs.shape[1] != layout.n_inputs:
                raise DataError(
                    f"the data have {dataset.inputs.shape[1]} inputs per line, the network's input "
                    f"layer has {layout.n_inputs} neurons",
                    where=path, allowed=f"{layout.n_inputs} input columns",
                )  # fmt: skip
            targets = interpret_targets(dataset, layout.n_outputs)
            self._datasets[key] = share_dataset(self.arena, f"data{len(self._datasets)}", dataset, targets)
        return self._datasets[key]

    def _weights_for(self, layout: Layout, parallel: int) -> tuple:
        key = (layout.n_weights, parallel)
        if key not in self._weights:
            name = f"weights{len(self._weights)}"
            main, main_spec = self.arena.array(f"{name}-main", (layout.n_weights,), np.float64)
            replicas, replicas_spec = self.arena.array(
                f"{name}-replicas", (parallel, layout.n_weights), np.float64
            )
            state = self.arena.array(f"{name}-state", (layout.n_weights,), np.float64)
            starts = self.arena.array(f"{name}-starts", (parallel, layout.n_weights), np.float64)
            self._weights[key] = (main, main_spec, replicas, replicas_spec, state, starts)
        return self._weights[key]


def shuffled_order(lines: int, seed: int, epoch: int) -> np.ndarray:
    """The order of epoch ``epoch``: a permutation seeded by (seed, epoch), reproducible."""
    return np.random.default_rng([seed, epoch]).permutation(lines)


def _fill_order(order: np.ndarray, settings: Settings, epoch: int) -> None:
    if settings.shuffle:
        order[:] = shuffled_order(len(order), settings.seed, epoch)
    else:
        order[:] = np.arange(len(order))


def _override(settings: Settings, overrides: dict) -> Settings:
    for name, value in overrides.items():
        settings = settings.with_value(name, value)
    return settings


def _result_row(
    batch_pass: Pass, settings: Settings, executor: Executor, network: Persisted,
    outcome: PassOutcome, setup: float, epoch: int,
) -> ResultRow:  # fmt: skip
    testing = batch_pass.mode == "test"
    lines = max(outcome.lines, 1)
    return ResultRow(
        mode=batch_pass.mode,
        cpus=os.cpu_count() or 1,
        parallel=settings.parallel,
        worker_batch=settings.worker_batch,
        learning_rate=settings.learning_rate,
        worker_setup_time=setup,
        epoch_elapsed_time=outcome.seconds,
        epoch_lines=outcome.lines,
        total_elapsed_time=network.total_seconds,
        total_lines=network.total_lines,
        correct=outcome.correct if testing else None,
        incorrect=outcome.lines - outcome.correct if testing else None,
        correct_percent=100.0 * outcome.correct / lines if testing else None,
        incorrect_percent=100.0 * (outcome.lines - outcome.correct) / lines if testing else None,
        error_rate=100.0 * outcome.error_sum / lines if testing else None,
        semantics=settings.semantics.recorded,
        executor=executor.name,
        data_capacity=settings.effective_data_capacity,
        output_capacity=settings.effective_output_capacity,
        epoch=epoch,
        seed=settings.seed,
    )


def _summary(mode: str, epoch: int, outcome: PassOutcome, row: ResultRow) -> Text:
    if mode == "train":
        rate = outcome.lines / outcome.seconds if outcome.seconds > 0 else math.inf
        return Text.assemble(
            ("Train", "green"),
            f" epoch {epoch}: {outcome.seconds:.3f} s, {outcome.lines} lines "
            f"({rate:,.0f} lines/s), {outcome.rounds} rounds",
        )
    return Text.assemble(
        ("Test", "cyan"),
        f" after epoch {epoch}: {outcome.seconds:.3f} s, {outcome.lines} lines, "
        f"correct {row.correct} ({row.correct_percent:.2f} %), incorrect {row.incorrect}, "
        f"error rate {row.error_rate:.4f}",
    )
