"""``bench speedup``: the thesis' speedup study — the same training for every worker count, repeated.

For each worker count P and repetition r, a run trains ``epochs`` epochs from fresh
weights (seed ``seed + r - 1``: every P starts from the same weights in one
repetition, repetitions differ) with a test pass after every epoch.  Repetitions
are interleaved (1, 2, 4, … then again), so a change in the machine's background
load spreads over all worker counts instead of landing on one.

The speedup of a row is T1 / TP: T1 the median epoch time of the smallest worker
count (1 unless left out) over all its repetitions and epochs, TP the row's epoch
time.  The summary gives, per worker count, the median epoch time and its range,
the speedup of the median, and the test accuracy after the last epoch.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actors.study import figures
from actors.study.data import StudyData
from actors.study.runs import (
    Output,
    RunResult,
    RunSpec,
    accuracy,
    epoch_columns,
    run_study,
    semantics_directives,
)
from actors.study.tables import Spread, group, report


@dataclass(frozen=True)
class SpeedupPlan:
    """What to run: the defaults are the quick look; ``THESIS_PLAN`` is the thesis' own study."""

    workers: tuple[int, ...] = (1, 2, 4, 8)
    epochs: int = 1
    repeat: int = 3
    executor: str = "process"
    semantics: str = "thesis"
    worker_batch: int = 100
    seed: int = 42
    directives: tuple[tuple[str, str], ...] = ()


CSV = "speedup.csv"
THESIS_PLAN = SpeedupPlan(workers=(1, 2, 4, 8, 12, 16), epochs=5, repeat=5)


def specs(plan: SpeedupPlan) -> list[RunSpec]:
    """One run per repetition and worker count, repetitions interleaved."""
    common = (
        *semantics_directives(plan.semantics),
        ("WorkerBatch", str(plan.worker_batch)),
        ("Executor", plan.executor),
    )
    return [
        RunSpec(
            name=f"workers{workers}-rep{repetition}",
            labels={
                "workers": workers,
                "repetition": repetition,
                "seed": plan.seed + repetition - 1,
                "executor": plan.executor,
                "semantics": plan.semantics,
                "worker_batch": plan.worker_batch,
            },
            directives=(
                *common,
                ("Parallel", str(workers)),
                ("Seed", str(plan.seed + repetition - 1)),
                *plan.directives,
            ),
            epochs=plan.epochs,
        )
        for repetition in range(1, plan.repeat + 1)
        for workers in plan.workers
    ]


def rows_of(results: list[RunResult], data: StudyData) -> list[dict[str, Any]]:
    """One row per run and epoch, sorted by workers, repetition, epoch, with the speedup filled in."""
    rows = [
        {**epoch_columns(result, epoch), "train_lines": data.train_lines, "test_lines": data.test_lines}
        for result in results
        for epoch in result.epochs
    ]
    rows.sort(key=lambda row: (row["workers"], row["repetition"], row["epoch"]))
    if rows:
        baseline = baseline_seconds(rows)
        for row in rows:
            row["speedup"] = baseline / row["epoch_seconds"]
    return rows


def baseline_seconds(rows: list[dict[str, Any]]) -> float:
    """T1: the median epoch time of the smallest worker count."""
    fewest = min(row["workers"] for row in rows)
    return statistics.median(row["epoch_seconds"] for row in rows if row["workers"] == fewest)


@dataclass(frozen=True)
class WorkerSummary:
    workers: int
    epoch_seconds: Spread
    speedup: Spread  # T1 / TP of every row; its median is T1 / median TP
    accuracy: Spread  # after the last epoch
    accuracy_by_epoch: tuple[Spread, ...]
    overhead_ms_per_round: Spread


def summarise(rows: list[dict[str, Any]]) -> list[WorkerSummary]:
    summaries = []
    for workers, mine in group(rows, lambda row: row["workers"]).items():
        by_epoch = group(sorted(mine, key=lambda row: row["epoch"]), lambda row: row["epoch"])
        growth = tuple(Spread.of(row["test_accuracy"] for row in epoch) for epoch in by_epoch.values())
        summaries.append(
            WorkerSummary(
                workers,
                Spread.of(row["epoch_seconds"] for row in mine),
                Spread.of(row["speedup"] for row in mine),
                growth[-1],
                growth,
                Spread.of(row["overhead_ms_per_round"] for row in mine),
            )
        )
    return summaries


HEADER = (
    "workers",
    "median epoch (s)",
    "speedup T1/TP",
    "test accuracy after last epoch (%)",
    "overhead (ms/round)",
)


def table_rows(summaries: list[WorkerSummary]) -> list[tuple[str, ...]]:
    return [
        (
            str(s.workers),
            s.epoch_seconds.text(3),
            s.speedup.text(2, "×"),
            s.accuracy.text(2),
            s.overhead_ms_per_round.text(2),
        )
        for s in summaries
    ]


def growth_rows(summaries: list[WorkerSummary]) -> tuple[list[str], list[tuple[str, ...]]]:
    """The thesis' table form: test accuracy (median, %) after each epoch, per worker count."""
    epochs = max(len(s.accuracy_by_epoch) for s in summaries)
    header = ["workers", *(f"ep{k}" for k in range(1, epochs + 1)), "median epoch (s)"]
    rows = [
        (str(s.workers), *(f"{a.median:.2f}" for a in s.accuracy_by_epoch), f"{s.epoch_seconds.median:.3f}")
        for s in summaries
    ]
    return header, rows


def draw(summaries: list[WorkerSummary], out: Path, title: str) -> list[Path]:
    """The thesis' figures 2–7 in our form: time and speedup, accuracy, accuracy growth."""
    cores = os.cpu_count() or 1
    workers = [s.workers for s in summaries]
    fig, (time_ax, speed_ax) = figures.figure(figures.WIDE, 1, 2)
    figures.median_line(time_ax, workers, [s.epoch_seconds for s in summaries], "median epoch, min–max")
    time_ax.set_ylabel("training epoch (s)")
    time_ax.set_title("Epoch time")
    time_ax.set_ylim(bottom=0)
    figures.median_line(speed_ax, workers, [s.speedup for s in summaries], "measured T1/TP")
    speed_ax.plot(workers, workers, "k--", linewidth=1, label="ideal (P×)")
    speed_ax.plot(
        workers,
        [min(w, cores) for w in workers],
        color="grey",
        linewidth=1,
        label="ideal here: min(P, cores)",
    )
    highest = max(s.speedup.high for s in summaries)
    speed_ax.set_ylim(0, max(cores + 0.5, 1.15 * highest))
    speed_ax.set_ylabel("speedup T1 / TP (×)")
    speed_ax.set_title("Speedup")
    for ax in (time_ax, speed_ax):
        figures.worker_axis(ax, workers)
        figures.mark_cores(ax, cores)
        ax.legend(fontsize=8)
    fig.suptitle(f"Speedup: {title}")
    paths = [figures.save(fig, out / "speedup.png")]

    fig, ax = figures.figure()
    figures.median_line(ax, workers, [s.accuracy for s in summaries], "median, min–max")
    figures.worker_axis(ax, workers)
    figures.mark_cores(ax, cores)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(
        f"Test accuracy after epoch {len(summaries[0].accuracy_by_epoch)} vs workers\n{title}", fontsize=10
    )
    ax.legend(fontsize=8)
    paths.append(figures.save(fig, out / "accuracy.png"))

    fig, ax = figures.figure()
    for s in summaries:
        epochs = list(range(1, len(s.accuracy_by_epoch) + 1))
        figures.median_line(
            ax, epochs, s.accuracy_by_epoch, f"{s.workers} worker{'s' if s.workers > 1 else ''}"
        )
    ax.set_xlabel("training epoch")
    ax.set_xticks(list(range(1, max(len(s.accuracy_by_epoch) for s in summaries) + 1)))
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"Test accuracy growth per epoch\n{title}", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    paths.append(figures.save(fig, out / "growth.png"))
    return paths


def describe(plan: SpeedupPlan, data: StudyData) -> str:
    return (
        f"{plan.semantics} math, executor {plan.executor}, WorkerBatch {plan.worker_batch}, "
        f"{data.train_lines:,} training / {data.test_lines:,} test lines"
    )


def run(plan: SpeedupPlan, data: StudyData, output: Output) -> dict[str, Path]:
    """Run the study; writes ``speedup.csv`` (after every run), ``speedup-summary.md`` and the figures."""

    def announce(result: RunResult) -> str:
        last, labels = result.epochs[-1], result.spec.labels
        return (
            f"workers {labels['workers']:>2}, repetition {labels['repetition']}: "
            f"epoch {last.train.seconds:.3f} s, test accuracy {accuracy(last.test):.2f} %"
        )

    results = run_study(specs(plan), data, output, CSV, lambda done: rows_of(done, data), announce)
    rows = rows_of(results, data)
    summaries = summarise(rows)
    title = f"{describe(plan, data)}; T1 = {baseline_seconds(rows):.3f} s"
    tables = [("Speedup", HEADER, table_rows(summaries))]
    if plan.epochs > 1:
        tables.append(
            ("Test accuracy (%) after each epoch, median over repetitions", *growth_rows(summaries))
        )
    summary = report(output.console, output.folder / "speedup-summary.md", title, tables)
    pictures = draw(summaries, output.folder, describe(plan, data))
    return {"csv": output.folder / CSV, "summary": summary, **{p.stem: p for p in pictures}}


def parse_workers(text: str) -> tuple[int, ...]:
    """``1,2,4,8`` → (1, 2, 4, 8); ``ValueError`` for anything but positive integers."""
    counts = tuple(int(part) for part in text.split(","))
    if not counts or any(c < 1 for c in counts):
        raise ValueError(text)
    return tuple(sorted(set(counts)))
