"""Running a study's batches: one batch file and one fresh ``Runner`` per run, all in one event loop.

A study is a list of ``RunSpec``s.  Each becomes a batch file in the study's
folder (so any run can be repeated by hand with ``python -m actors run FILE``),
all of them are parsed before the first one starts (a bad ``--set`` fails
at once), and each runs in a ``Runner`` of its own: fresh weights, a fresh
executor, the same cold start for every run.  A test pass follows every training
epoch.  One rich bar counts the passes of the whole study, a second one the lines
of the pass in progress.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import anyio
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from actors.batchfile.parse import Batch, load_batch
from actors.batchfile.settings import Settings
from actors.console import note
from actors.outcome import PassOutcome
from actors.records.journal import Journal
from actors.study.data import StudyData
from actors.study.tables import write_csv
from brain.errors import UserError, shorten

NETWORK = "Identity, 784\nELU, 100\nSoftMax, 10\n"  # the thesis' benchmark network, 784-100-10
NETWORK_FILE = "network-784-100-10.txt"  # its file, beside a study's batch files
# Below these a study's figures mean little: with fewer rounds per epoch start-up and
# merges outweigh the training, with fewer test lines the accuracy moves in steps of 0.1 %.
MEANINGFUL_ROUNDS = 10
MEANINGFUL_TEST_LINES = 1000

# The thesis' hyper-parameters (shared/spec/thesis-results.md): every run starts from these.
THESIS = (
    ("PreProcessing", "None"),
    ("LearningRate", "0.8"),
    ("Lambda", "1e-7"),
    ("MinWeight", "-0.1"),
    ("MaxWeight", "0.1"),
)
# Textbook math on the same network: cross-entropy, plain SGD on mini-batches of 100 in
# float32 -- what PyTorch is compared with in `bench compare`.
MODERN = (
    ("Semantics", "Modern"),
    ("Loss", "CrossEntropy"),
    ("PreProcessing", "Proportional"),
    ("ELUAlpha", "1"),
    ("Init", "He"),
    ("Optimizer", "SGD"),
    ("LearningRate", "0.1"),
    ("Lambda", "0"),
    ("Update", "MiniBatch"),
    ("MiniBatch", "100"),
    ("Precision", "float32"),
)
SEMANTICS = {"thesis": THESIS, "modern": MODERN}


def has_directive(field_name: str) -> bool:
    """Whether this runtime's batch files know the setting ``field_name`` (e.g. ``rounds``)."""
    return any(f.name == field_name for f in fields(Settings))


def semantics_directives(semantics: str) -> tuple[tuple[str, str], ...]:
    """The preset of ``semantics``; modern needs the runtime's Semantics directive."""
    if semantics == "modern" and not has_directive("semantics"):
        raise UserError("this runtime has no modern semantics", allowed="--semantics thesis")
    return SEMANTICS[semantics]


def parse_directives(texts: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``--set KEY=VALUE`` (or ``'Key: value'``) options as pairs; the batch parser checks them later."""
    pairs = []
    for text in texts:
        key, sign, value = text.partition(":" if ":" in text else "=")
        if not sign or not key.strip() or not value.strip():
            raise UserError(f"--set {shorten(text)!r} is not KEY=VALUE", allowed="e.g. --set Merge=Mean")
        pairs.append((key.strip(), value.strip()))
    return tuple(pairs)


@dataclass(frozen=True)
class RunSpec:
    """One run of a study: what identifies it in the tables, and the directives it runs with."""

    name: str  # the stem of its batch file, e.g. "workers4-rep1"
    labels: dict[str, Any]  # its columns in the study's CSV, e.g. {"workers": 4, "repetition": 1}
    directives: tuple[tuple[str, str], ...]
    epochs: int


@dataclass(frozen=True)
class EpochResult:
    """A training epoch and the test pass after it."""

    epoch: int
    train: PassOutcome
    test: PassOutcome


@dataclass(frozen=True)
class RunResult:
    spec: RunSpec
    epochs: tuple[EpochResult, ...]
    setup_seconds: float  # wall time of the run outside its round loops: pool start, data loading, warm-up
    load_average: float  # this machine's 1-minute load average when the run began


def batch_text(spec: RunSpec, data: StudyData, network: Path) -> str:
    """The batch file of one run: the network, the data, the directives, then Train/Test per epoch."""
    lines = [
        f"# {spec.name}: written by the study instrument; run again with `python -m actors run <this file>`",
        f"NetworkFile: {network}",
        f"TrainFile: {data.train}",
        f"TestFile: {data.test}",
        *(f"{key}: {value}" for key, value in spec.directives),
    ]
    lines += ["Train: 1", "Test: 1"] * spec.epochs
    return "\n".join(lines) + "\n"


def write_batches(specs: Sequence[RunSpec], data: StudyData, folder: Path) -> list[Batch]:
    """Write every run's batch file into ``folder`` and parse them all (``BatchError`` on a bad one)."""
    folder.mkdir(parents=True, exist_ok=True)
    network = folder / NETWORK_FILE
    network.write_text(NETWORK, encoding="utf-8")
    batches = []
    for spec in specs:
        path = folder / f"{spec.name}.txt"
        path.write_text(batch_text(spec, data, network), encoding="utf-8")
        batches.append(load_batch(path))
    return batches


def subset_notes(batches: Sequence[Batch], data: StudyData) -> list[str]:
    """What makes the study's figures of little meaning on this data subset (``--train-lines 50``)."""
    notes = []
    trains = [p.settings for batch in batches for p in batch.passes if p.mode == "train"]
    per_round = max((settings.parallel * settings.worker_batch for settings in trains), default=1)
    rounds = math.ceil(data.train_lines / per_round)
    if rounds < MEANINGFUL_ROUNDS:
        notes.append(
            f"{data.train_lines:,} training lines are {rounds} round{'s' * (rounds != 1)} of "
            f"{per_round:,} lines (Parallel × WorkerBatch) for the most workers: start-up and merges, "
            f"not training, make the times; take --train-lines {MEANINGFUL_ROUNDS * per_round:,} or more"
        )
    if data.test_lines < MEANINGFUL_TEST_LINES:
        notes.append(
            f"{data.test_lines:,} test lines give accuracies in steps of {100 / data.test_lines:.2g} %; "
            f"take --test-lines {MEANINGFUL_TEST_LINES:,} or more"
        )
    return notes


@dataclass(frozen=True)
class Output:
    """Where a study writes and reports: its folder, the console, and a folder for the runs' JSON log."""

    folder: Path
    console: Console
    log_dir: Path | None = None
    quiet: bool = False  # no progress bars, no line per run


def run_study(
    specs: Sequence[RunSpec],
    data: StudyData,
    output: Output,
    csv_name: str,
    rows_of: Callable[[list[RunResult]], list[dict[str, Any]]],
    announce: Callable[[RunResult], str] | None = None,
) -> list[RunResult]:
    """Run every spec in order; after each run rewrite ``csv_name`` in the study's folder with
    ``rows_of(the results so far)`` and print ``announce(result)``.

    A user error (a bad directive, missing data) stops the study before or after the
    run it concerns; an interrupt (SIGINT/SIGTERM) ends the run in progress after its
    round and raises ``Interrupted``: the CSV then holds the runs finished before it.
    """
    batches = write_batches(specs, data, output.folder / "batches")
    for text in subset_notes(batches, data):
        note(text)
    journal = Journal(output.log_dir)
    results: list[RunResult] = []
    passes = sum(2 * spec.epochs for spec in specs)
    try:
        with _StudyScreen(output.console, passes, output.quiet) as screen:

            async def run_all() -> None:
                from actors.runner import Runner

                for spec, batch in zip(specs, batches, strict=True):
                    load = os.getloadavg()[0]
                    began = time.perf_counter()
                    with Runner(journal, screen) as runner:
                        await runner.run(batch)
                    journal.event("run_end", status="ok")
                    results.append(_result(spec, runner.outcomes, time.perf_counter() - began, load))
                    write_csv(output.folder / csv_name, rows_of(results))
                    if announce is not None and not output.quiet:
                        output.console.print(announce(results[-1]))

            anyio.run(run_all, backend="asyncio")
    finally:
        journal.close()
    return results


def _result(spec: RunSpec, outcomes: list, wall: float, load: float) -> RunResult:
    epochs = []
    for (train_pass, train), (test_pass, test) in zip(outcomes[0::2], outcomes[1::2], strict=True):
        assert train_pass.mode == "train" and test_pass.mode == "test"
        epochs.append(EpochResult(len(epochs) + 1, train, test))
    looped = sum(e.train.seconds + e.test.seconds for e in epochs)
    return RunResult(spec, tuple(epochs), max(0.0, wall - looped), load)


class _StudyScreen:
    """What a ``Runner`` reports to: a bar over the study's passes and one over the pass in progress.

    The runner's one-line summaries are dropped; the study prints its own line per run.
    """

    def __init__(self, console: Console, passes: int, quiet: bool) -> None:
        self.console = console
        self.quiet = quiet
        self._bar = Progress(
            TextColumn("{task.description}", style="bold", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=quiet or not console.is_terminal,
        )
        self._study = self._bar.add_task("passes", total=passes)

    def __enter__(self) -> _StudyScreen:
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    @contextmanager
    def progress(self, title: str, total: int, testing: bool) -> Iterator[Callable[[int, int], None]]:
        task = self._bar.add_task(title, total=total)
        try:
            yield lambda done, correct: self._bar.update(task, completed=done)
        finally:
            self._bar.remove_task(task)
            self._bar.advance(self._study)

    def line(self, text: object, style: str | None = None) -> None:
        """A runner's summary line: not shown (the study prints one line per run)."""


def accuracy(outcome: PassOutcome) -> float:
    """Test accuracy of a pass, in percent."""
    return 100.0 * outcome.correct / outcome.lines if outcome.lines else float("nan")


def epoch_columns(result: RunResult, epoch: EpochResult) -> dict[str, Any]:
    """The columns every study reports per run and epoch (times in seconds, accuracy in percent)."""
    train = epoch.train
    return {
        **result.spec.labels,
        "epoch": epoch.epoch,
        "epoch_seconds": train.seconds,
        "lines": train.lines,
        "round_count": train.rounds,
        "overhead_seconds": train.overhead_seconds,
        "overhead_ms_per_round": 1000.0 * train.overhead_seconds / train.rounds if train.rounds else 0.0,
        "merge_seconds": train.merge_seconds,
        "compute_seconds": sum(tally.computing for tally in train.workers),
        "test_accuracy": accuracy(epoch.test),
        "test_seconds": epoch.test.seconds,
        "setup_seconds": result.setup_seconds,
        "load_average": result.load_average,
    }
