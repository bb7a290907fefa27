"""``bench compare``: our executors against each other, and against PyTorch when it is installed.

Same network (784-100-10, ELU hidden, softmax output), same data: for every
executor and worker count a run of the thesis math (online SGD inside each 100-line
slice, the thesis' merge); for every worker count a run of ``batch/modern.txt``'s
training (momentum SGD on mini-batches of 100 in float32, a cosine learning rate,
L2, replicas averaged every 1,000 lines) over ``modern_epochs`` epochs, a test after
each.  PyTorch trains the same way from the same initial weights at each of its
thread counts, and once online (batches of 1, SGD 0.01), the form of the thesis
math.  The repetitions are interleaved: every configuration's first run, then
every configuration's second, so that a busy spell of the machine does not fall on
one configuration only.

Two tables: medians over the runs of the epoch time (training loop only) and of the
test accuracy after the last epoch; and the training seconds each modern
configuration needs to reach 97 % and 98 % test accuracy (summed over the epochs up
to the first test at or above it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from actors.batchfile.parse import parse_batch
from actors.batchfile.settings import Settings
from actors.study import figures, torch_baseline
from actors.study.data import StudyData
from actors.study.runs import (
    NETWORK_FILE,
    THESIS,
    Output,
    RunResult,
    RunSpec,
    batch_text,
    epoch_columns,
    has_directive,
    run_study,
)
from actors.study.tables import Spread, group, report, write_csv
from brain.modern import Modern, Schedule
from brain.preprocessing import PreProcessing

CSV = "compare.csv"
ACCURACY_TARGETS = (97.0, 98.0)  # percent: the time-to-accuracy columns
# batch/modern.txt's training, without its files, Parallel and passes (a test holds the two equal).
MODERN_BATCH = (
    ("Semantics", "Modern"),
    ("Loss", "CrossEntropy"),
    ("PreProcessing", "Proportional"),
    ("ELUAlpha", "1"),
    ("Init", "He"),
    ("Optimizer", "Momentum"),
    ("Momentum", "0.9"),
    ("LearningRate", "0.3"),
    ("LearningRateSchedule", "Cosine"),
    ("CosineEpochs", "10"),
    ("Lambda", "0"),
    ("LambdaL2", "1e-4"),
    ("Update", "MiniBatch"),
    ("MiniBatch", "100"),
    ("Precision", "float32"),
    ("WorkerBatch", "1000"),
    ("Merge", "Mean"),
    ("Rounds", "Sync"),
)
# PyTorch's online row: plain SGD on batches of one, as the thesis math trains.
TORCH_ONLINE = Modern(
    optimizer="sgd", learning_rate=0.01, minibatch=1, preprocessing=PreProcessing.Proportional, elu_alpha=1.0
)


@dataclass(frozen=True)
class ComparePlan:
    executors: tuple[str, ...] = ("inline", "thread", "process")
    parallel: tuple[int, ...] = (1, 2)
    epochs: int = 1  # of the thesis runs and of PyTorch's online run
    modern_epochs: int = 10  # of the modern runs, ours and PyTorch's mini-batches
    repeat: int = 3
    torch: bool = True
    torch_threads: tuple[int, ...] = (1,)
    seed: int = 42
    directives: tuple[tuple[str, str], ...] = ()

    @property
    def modern_executor(self) -> str:
        return "process" if "process" in self.executors else self.executors[0]


def specs(plan: ComparePlan, repetition: int) -> list[RunSpec]:
    """Our runs of one repetition: thesis math per executor × workers; modern.txt's training per workers."""
    configurations = [
        ("thesis", "online", executor, workers, THESIS, plan.epochs)
        for executor in plan.executors
        for workers in plan.parallel
    ]
    if has_directive("semantics"):
        configurations += [
            ("modern", "minibatch", plan.modern_executor, workers, MODERN_BATCH, plan.modern_epochs)
            for workers in plan.parallel
        ]
    return [
        RunSpec(
            name=f"{math}-{executor}-workers{workers}-rep{repetition}",
            labels={
                "implementation": "ours",
                "math": math,
                "update": update,
                "executor": executor,
                "workers": workers,
                "repetition": repetition,
            },
            directives=(
                ("WorkerBatch", "100"),
                *preset,
                ("Executor", executor),
                ("Parallel", str(workers)),
                ("Seed", str(plan.seed + repetition - 1)),
                *plan.directives,
            ),
            epochs=epochs,
        )
        for math, update, executor, workers, preset, epochs in configurations
    ]


def our_rows(results: list[RunResult]) -> list[dict[str, Any]]:
    return [_common(epoch_columns(result, epoch)) for result in results for epoch in result.epochs]


def _common(row: dict[str, Any]) -> dict[str, Any]:
    """The columns every row of the comparison has, ours and PyTorch's."""
    names = (
        "implementation",
        "math",
        "update",
        "executor",
        "workers",
        "repetition",
        "epoch",
        "epoch_seconds",
        "test_accuracy",
        "test_seconds",
    )
    return {name: row[name] for name in names}


def torch_rows(plan: ComparePlan, data: StudyData, repetition: int, modern: Settings | None) -> list[dict]:
    """PyTorch's runs of one repetition: ``modern``'s training at each thread count, then online SGD.

    ``modern`` is the settings of our modern runs (None without them: no mini-batch rows).
    """
    seed = plan.seed + repetition - 1
    runs = []
    if modern is not None:
        training = _torch_training(modern)
        runs += [("minibatch", training, plan.modern_epochs, threads) for threads in plan.torch_threads]
    online = torch_baseline.TorchTraining(TORCH_ONLINE, Schedule("constant"), "He", seed)
    runs.append(("online", online, plan.epochs, plan.torch_threads[0]))
    rows = []
    for update, training, epochs, threads in runs:
        results = torch_baseline.train(
            data.train, data.test, epochs=epochs, training=training, threads=threads
        )
        rows += [
            {
                "implementation": "pytorch",
                "math": "modern",
                "update": update,
                "executor": f"{threads} thread{'s' if threads > 1 else ''}",
                "workers": 1,
                "repetition": repetition,
                "epoch": e.epoch,
                "epoch_seconds": e.epoch_seconds,
                "test_accuracy": e.test_accuracy,
                "test_seconds": e.test_seconds,
            }
            for e in results
        ]
    return rows


HEADER = (
    "implementation",
    "math",
    "update",
    "executor",
    "workers",
    "epoch (s)",
    "lines/s",
    "test accuracy (%)",
)


ACCURACY_HEADER = (
    "implementation",
    "executor",
    "workers",
    "epochs",
    "epoch (s)",
    *(f"to {target:g} % (s)" for target in ACCURACY_TARGETS),
    "test accuracy (%)",
)


@dataclass(frozen=True)
class Configuration:
    """One line of the comparison: who trained how, epoch times, final accuracies, times to the targets."""

    implementation: str
    math: str
    update: str
    executor: str
    workers: int
    epoch_seconds: Spread
    accuracy: Spread  # after the last epoch
    epochs: int
    runs: int
    to_targets: tuple[Spread, ...]  # training seconds to each ACCURACY_TARGETS, of the runs that got there

    @property
    def label(self) -> str:
        return f"{self.implementation} {self.math} {self.update}, {self.executor}, P={self.workers}"


def seconds_to(run: list[dict[str, Any]], target: float) -> float:
    """Training seconds of ``run`` (its rows, one per epoch) up to its first test at or above ``target`` %.

    NaN when no test got there.
    """
    total = 0.0
    for row in sorted(run, key=lambda row: row["epoch"]):
        total += row["epoch_seconds"]
        if row["test_accuracy"] >= target:
            return total
    return math.nan


def summarise(rows: list[dict[str, Any]]) -> list[Configuration]:
    def key(row: dict[str, Any]) -> tuple:
        return row["implementation"], row["math"], row["update"], row["executor"], row["workers"]

    configurations = []
    for identity, mine in group(rows, key).items():
        last = max(row["epoch"] for row in mine)
        runs = list(group(mine, lambda row: row["repetition"]).values())
        configurations.append(
            Configuration(
                *identity,
                Spread.of(row["epoch_seconds"] for row in mine),
                Spread.of(row["test_accuracy"] for row in mine if row["epoch"] == last),
                last,
                len(runs),
                tuple(Spread.of(seconds_to(run, target) for run in runs) for target in ACCURACY_TARGETS),
            )
        )
    return configurations


def table_rows(configurations: list[Configuration], lines: int) -> list[tuple[str, ...]]:
    return [
        (
            c.implementation,
            c.math,
            c.update,
            c.executor,
            str(c.workers),
            c.epoch_seconds.text(3),
            f"{lines / c.epoch_seconds.median:,.0f}",
            c.accuracy.text(2),
        )
        for c in configurations
    ]


def accuracy_rows(configurations: list[Configuration]) -> list[tuple[str, ...]]:
    """The time-to-accuracy table: the modern mini-batch configurations, ours and PyTorch's."""
    return [
        (
            c.implementation,
            c.executor,
            str(c.workers),
            str(c.epochs),
            c.epoch_seconds.text(3),
            *(_reached(spread, c.runs) for spread in c.to_targets),
            c.accuracy.text(2),
        )
        for c in configurations
        if c.math == "modern" and c.update == "minibatch"
    ]


def _reached(spread: Spread, runs: int) -> str:
    if not spread.count:
        return "not reached"
    return spread.text(2) + ("" if spread.count == runs else f" ({spread.count} of {runs} runs)")


def draw(configurations: list[Configuration], out: Path, title: str) -> Path:
    """Horizontal bars of the median epoch time, each labelled with its accuracy."""
    fig, ax = figures.figure(figures.WIDE)
    seconds = [c.epoch_seconds.median for c in configurations]
    colours = ["tab:orange" if c.implementation == "pytorch" else "tab:blue" for c in configurations]
    bars = ax.barh(range(len(configurations)), seconds, color=colours)
    ax.set_yticks(range(len(configurations)), [c.label for c in configurations], fontsize=8)
    ax.invert_yaxis()
    for bar, c in zip(bars, configurations, strict=True):
        middle = bar.get_y() + bar.get_height() / 2
        ax.text(bar.get_width(), middle, f"  {c.accuracy.median:.2f} %", va="center", fontsize=8)
    ax.set_xlabel("training epoch, median (s)")
    ax.set_xlim(0, 1.2 * max(seconds))
    ax.set_title(f"Time per epoch (bars) and test accuracy (labels): {title}", fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)
    return figures.save(fig, out / "compare.png")


def run(plan: ComparePlan, data: StudyData, output: Output) -> dict[str, Path]:
    """Run every repetition in turn: ours, then PyTorch's; writes ``compare.csv``, ``compare-summary.md``
    and ``compare.png``.  The CSV is rewritten after every run.
    """
    console, csv_path = output.console, output.folder / CSV
    with_torch = plan.torch and torch_baseline.available()
    if not plan.torch:
        console.print("PyTorch left out (--no-torch)")
    elif not with_torch:
        console.print(f"skipped: PyTorch not installed ({torch_baseline.INSTALL_HINT})", style="yellow")
    if with_torch and (first := _modern_settings(specs(plan, 1), data, output.folder)) is not None:
        _torch_training(first)  # a setting PyTorch cannot follow fails now, not after our runs
    rows: list[dict[str, Any]] = []
    for repetition in range(1, plan.repeat + 1):
        mine = specs(plan, repetition)
        rows += our_rows(run_study(mine, data, output, CSV, partial(_after, list(rows))))
        if with_torch:
            rows += torch_rows(plan, data, repetition, _modern_settings(mine, data, output.folder))
            write_csv(csv_path, rows)
    title = f"784-100-10, batches of 100, {data.train_lines:,} training / {data.test_lines:,} test lines"
    configurations = summarise(rows)
    tables = [("Compare", HEADER, table_rows(configurations, data.train_lines))]
    if accuracy := accuracy_rows(configurations):
        tables.append(("Time to accuracy (training seconds)", ACCURACY_HEADER, accuracy))
    summary = report(console, output.folder / "compare-summary.md", title, tables)
    return {"csv": csv_path, "summary": summary, "compare": draw(configurations, output.folder, title)}


def _after(before: list[dict[str, Any]], results: list[RunResult]) -> list[dict[str, Any]]:
    """The CSV's rows during a repetition: those of the repetitions before, then its runs so far."""
    return before + our_rows(results)


def _modern_settings(mine: list[RunSpec], data: StudyData, folder: Path) -> Settings | None:
    """The settings of our modern runs among ``mine`` (None without them), as their batch file sets them."""
    for spec in mine:
        if spec.labels["math"] == "modern":
            batches = folder / "batches"
            text = batch_text(spec, data, batches / NETWORK_FILE)
            return parse_batch(text, batches / f"{spec.name}.txt").passes[0].settings
    return None


def _torch_training(settings: Settings) -> torch_baseline.TorchTraining:
    """PyTorch's training as ``settings`` describe ours (``UserError`` for what it cannot follow)."""
    return torch_baseline.TorchTraining(
        settings.modern_hyper(), settings.learning_rate_schedule(), settings.init, settings.seed
    )
