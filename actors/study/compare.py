"""``bench compare``: our executors against each other, and against PyTorch when it is installed.

Same network (784-100-10, ELU hidden, softmax output), same data, same batch size
(100 lines): for every executor and worker count a run of the thesis math
(online SGD inside each 100-line slice, the thesis' merge), then one run of the
modern math on mini-batches of 100 in float32 with one worker — the same training
PyTorch does in its two rows: mini-batches of 100, and online (batches of 1), the
form of the thesis math.  Medians over ``repeat`` runs of the epoch time (training
loop only) and of the test accuracy after the last epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actors.study import figures, torch_baseline
from actors.study.data import StudyData
from actors.study.runs import (
    MODERN,
    THESIS,
    Output,
    RunResult,
    RunSpec,
    epoch_columns,
    has_directive,
    run_study,
)
from actors.study.tables import Spread, group, report, write_csv

CSV = "compare.csv"
TORCH_ROWS = (("minibatch", 100, 0.1), ("online", 1, 0.01))  # (update, batch, learning rate)


@dataclass(frozen=True)
class ComparePlan:
    executors: tuple[str, ...] = ("inline", "thread", "process")
    parallel: tuple[int, ...] = (1, 2)
    epochs: int = 1
    repeat: int = 3
    torch: bool = True
    torch_threads: tuple[int, ...] = (1,)
    seed: int = 42
    directives: tuple[tuple[str, str], ...] = ()


def specs(plan: ComparePlan) -> list[RunSpec]:
    """Ours: thesis math per executor × workers; modern mini-batches, one worker (process if listed)."""
    configurations = [
        ("thesis", "online", executor, workers, THESIS)
        for executor in plan.executors
        for workers in plan.parallel
    ]
    if has_directive("semantics"):
        executor = "process" if "process" in plan.executors else plan.executors[0]
        configurations.append(("modern", "minibatch", executor, 1, MODERN))
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
                *preset,
                ("WorkerBatch", "100"),
                ("Executor", executor),
                ("Parallel", str(workers)),
                ("Seed", str(plan.seed + repetition - 1)),
                *plan.directives,
            ),
            epochs=plan.epochs,
        )
        for repetition in range(1, plan.repeat + 1)
        for math, update, executor, workers, preset in configurations
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


def torch_rows(plan: ComparePlan, data: StudyData) -> list[dict[str, Any]]:
    rows = []
    for repetition in range(1, plan.repeat + 1):
        for threads in plan.torch_threads:
            for update, batch, rate in TORCH_ROWS:
                epochs = torch_baseline.train(
                    data.train,
                    data.test,
                    epochs=plan.epochs,
                    batch=batch,
                    learning_rate=rate,
                    seed=plan.seed + repetition - 1,
                    threads=threads,
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
                    for e in epochs
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


@dataclass(frozen=True)
class Configuration:
    """One line of the comparison: who trained how, the epoch times and the final accuracies."""

    implementation: str
    math: str
    update: str
    executor: str
    workers: int
    epoch_seconds: Spread
    accuracy: Spread  # after the last epoch

    @property
    def label(self) -> str:
        return f"{self.implementation} {self.math} {self.update}, {self.executor}, P={self.workers}"


def summarise(rows: list[dict[str, Any]]) -> list[Configuration]:
    def key(row: dict[str, Any]) -> tuple:
        return row["implementation"], row["math"], row["update"], row["executor"], row["workers"]

    configurations = []
    for identity, mine in group(rows, key).items():
        last = max(row["epoch"] for row in mine)
        configurations.append(
            Configuration(
                *identity,
                Spread.of(row["epoch_seconds"] for row in mine),
                Spread.of(row["test_accuracy"] for row in mine if row["epoch"] == last),
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
    """Run ours, then PyTorch; writes ``compare.csv``, ``compare-summary.md`` and ``compare.png``."""
    console, csv_path = output.console, output.folder / CSV
    rows = our_rows(run_study(specs(plan), data, output, CSV, our_rows))
    if not plan.torch:
        console.print("PyTorch left out (--no-torch)")
    elif not torch_baseline.available():
        console.print(f"skipped: PyTorch not installed ({torch_baseline.INSTALL_HINT})", style="yellow")
    else:
        rows += torch_rows(plan, data)
        write_csv(csv_path, rows)
    title = f"784-100-10, batches of 100, {data.train_lines:,} training / {data.test_lines:,} test lines"
    configurations = summarise(rows)
    table = table_rows(configurations, data.train_lines)
    summary = report(console, output.folder / "compare-summary.md", title, [("Compare", HEADER, table)])
    return {"csv": csv_path, "summary": summary, "compare": draw(configurations, output.folder, title)}
