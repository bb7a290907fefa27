"""``bench speedup``: the thesis' speedup study — the same training for every worker count, repeated.

For each worker count P and repetition r, a run trains ``epochs`` epochs from fresh
weights (seed ``seed + r - 1``: every P starts from the same weights in one
repetition, repetitions differ) with a test pass after every epoch.  Repetitions
are interleaved (1, 2, 4, … then again), so a change in the machine's background
load spreads over all worker counts instead of landing on one.

The speedup of a row is S = T1 / TP: T1 the median epoch time of the smallest worker
count (1 unless left out) over all its repetitions and epochs, TP the row's epoch
time.  Beside it, as the field reports speedup: the efficiency E = S / P and the
Karp–Flatt experimentally determined serial fraction e = (1/S − 1/P) / (1 − 1/P)
(undefined for P = 1: left empty), and the speedup of ``actors.study.floor`` — the same
rounds with nothing but pinned processes and pipes — measured on the same machine
after the runs, in the same invocation, for the same worker counts and lines.  With
a target accuracy, each row also holds its run's seconds of training until a test
pass first reached it (empty if none did).  The summary gives, per worker count,
the median epoch time and its range, the speedup, efficiency and serial fraction,
the floor's speedup, the time to the target and the test accuracy after the last
epoch.
"""

from __future__ import annotations

import math
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
from actors.study.tables import Spread, group, report, write_csv


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
    target: float | None = None  # test accuracy (%) whose time to reach is reported
    floor_data: Path | None = None  # the MNIST IDX folder the floor trains on; None: no floor


CSV = "speedup.csv"
FLOOR_DRIVERS = {"floor_speedup": "asyncio", "floor_loop_speedup": "loop"}  # column → floor.DRIVERS
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


def rows_of(
    results: list[RunResult], data: StudyData, target: float | None = None, floor: dict | None = None
) -> list[dict[str, Any]]:
    """One row per run and epoch, sorted by workers, repetition, epoch, with the speedup filled in.

    ``floor`` maps (driver, workers) to the floor's speedup (``floor_speedups``); the
    floor's columns are empty without it.
    """
    rows = []
    for result in results:
        reached = time_to_target([(e.train.seconds, accuracy(e.test)) for e in result.epochs], target)
        for epoch in result.epochs:
            row = {
                **epoch_columns(result, epoch),
                "train_lines": data.train_lines,
                "test_lines": data.test_lines,
            }
            row["seconds_to_target"], row["epochs_to_target"] = reached or ("", "")
            rows.append(row)
    rows.sort(key=lambda row: (row["workers"], row["repetition"], row["epoch"]))
    if rows:
        baseline = baseline_seconds(rows)
        for row in rows:
            row["speedup"] = baseline / row["epoch_seconds"]
            row["efficiency"] = row["speedup"] / row["workers"]
            row["serial_fraction"] = karp_flatt(row["speedup"], row["workers"])
            for column, driver in FLOOR_DRIVERS.items():
                row[column] = (floor or {}).get((driver, row["workers"]), "")
    return rows


def karp_flatt(speedup: float, workers: int) -> float | str:
    """The experimentally determined serial fraction e = (1/S − 1/P) / (1 − 1/P); "" for P = 1."""
    if workers == 1:
        return ""
    return (1 / speedup - 1 / workers) / (1 - 1 / workers)


def time_to_target(epochs: list[tuple[float, float]], target: float | None) -> tuple[float, int] | None:
    """(seconds of training, epochs) until the first test at or above ``target`` %, or None.

    ``epochs`` holds each epoch's training seconds and the test accuracy after it.
    """
    if target is None:
        return None
    seconds = 0.0
    for number, (train_seconds, test_accuracy) in enumerate(epochs, start=1):
        seconds += train_seconds
        if test_accuracy >= target:
            return seconds, number
    return None


def floor_speedups(plan: SpeedupPlan, data: StudyData) -> dict[tuple[str, int], float]:
    """The floor's speedup per (driver, workers) on this machine now: ``plan.repeat`` epochs of
    ``data.train_lines`` lines per driver and worker count, interleaved (``actors.study.floor``)."""
    from actors.study import floor

    assert plan.floor_data is not None
    seconds = floor.measure(
        plan.floor_data, plan.workers, plan.repeat, plan.worker_batch, plan.seed, data.train_lines
    )
    return {(row["driver"], row["workers"]): row["speedup"] for row in floor.summary(seconds)}


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
    efficiency: Spread
    serial_fraction: Spread  # nan for one worker
    floor_speedup: Spread  # the floor's asyncio driver; nan without the floor
    floor_loop_speedup: Spread  # its blocking loop
    seconds_to_target: Spread  # of the runs that reached the target
    reached_target: int  # runs that reached it
    runs: int


def summarise(rows: list[dict[str, Any]]) -> list[WorkerSummary]:
    summaries = []
    for workers, mine in group(rows, lambda row: row["workers"]).items():
        by_epoch = group(sorted(mine, key=lambda row: row["epoch"]), lambda row: row["epoch"])
        growth = tuple(Spread.of(row["test_accuracy"] for row in epoch) for epoch in by_epoch.values())
        runs = [rows_of_run[0] for rows_of_run in group(mine, lambda row: row["repetition"]).values()]
        reached = [row["seconds_to_target"] for row in runs if row["seconds_to_target"] != ""]
        summaries.append(
            WorkerSummary(
                workers,
                Spread.of(row["epoch_seconds"] for row in mine),
                Spread.of(row["speedup"] for row in mine),
                growth[-1],
                growth,
                Spread.of(row["overhead_ms_per_round"] for row in mine),
                Spread.of(row["efficiency"] for row in mine),
                Spread.of(_number(row["serial_fraction"]) for row in mine),
                Spread.of(_number(row["floor_speedup"]) for row in mine),
                Spread.of(_number(row["floor_loop_speedup"]) for row in mine),
                Spread.of(reached),
                len(reached),
                len(runs),
            )
        )
    return summaries


def _number(cell: float | str) -> float:
    """A CSV cell that may be empty ("": undefined or not measured) as a float (nan)."""
    return math.nan if cell == "" else float(cell)


HEADER = (
    "workers",
    "median epoch (s)",
    "speedup T1/TP",
    "efficiency S/P",
    "serial fraction (Karp–Flatt)",
    "floor's speedup asyncio/loop",
    "test accuracy after last epoch (%)",
    "overhead (ms/round)",
)


def table_rows(summaries: list[WorkerSummary], target: float | None = None) -> list[tuple[str, ...]]:
    """The summary's rows; with a ``target``, a last column: seconds to reach it (runs that did)."""
    rows = []
    for s in summaries:
        floor = "—" if s.floor_speedup.count == 0 else (
            f"{s.floor_speedup.median:.2f}×/{s.floor_loop_speedup.median:.2f}×"
        )  # fmt: skip
        row = (
            str(s.workers),
            s.epoch_seconds.text(3),
            s.speedup.text(2, "×"),
            s.efficiency.text(2),
            "—" if s.serial_fraction.count == 0 else s.serial_fraction.text(3),
            floor,
            s.accuracy.text(2),
            s.overhead_ms_per_round.text(2),
        )
        if target is not None:
            reached = "never" if not s.reached_target else s.seconds_to_target.text(2)
            row += (f"{reached} ({s.reached_target} of {s.runs} runs)",)
        rows.append(row)
    return rows


def header(target: float | None) -> tuple[str, ...]:
    return HEADER if target is None else (*HEADER, f"training to {target:g} % (s)")


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
    floors = _floors(summaries)
    for label, speedups in floors.items():
        speed_ax.plot(workers, speedups, marker=".", linewidth=1, label=label)
    highest = max(s.speedup.high for s in summaries)
    speed_ax.set_ylim(0, max(cores + 0.5, 1.15 * highest))
    speed_ax.set_ylabel("speedup T1 / TP (×)")
    speed_ax.set_title("Speedup")
    paths = [
        _save_by_workers(fig, workers, cores, f"Speedup: {title}", out / "speedup.png"),
        _efficiency_figure(summaries, out, title, cores),
    ]

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


def _floors(summaries: list[WorkerSummary]) -> dict[str, list[float]]:
    """The floor's median speedups per worker count, by driver (none without the floor)."""
    if all(s.floor_speedup.count == 0 for s in summaries):
        return {}
    return {
        "floor, asyncio": [s.floor_speedup.median for s in summaries],
        "floor, blocking loop": [s.floor_loop_speedup.median for s in summaries],
    }


def _efficiency_figure(summaries: list[WorkerSummary], out: Path, title: str, cores: int) -> Path:
    """Efficiency S/P and the Karp–Flatt serial fraction per worker count, measured and the floor's."""
    workers = [s.workers for s in summaries]
    fig, (efficiency_ax, serial_ax) = figures.figure(figures.WIDE, 1, 2)
    figures.median_line(efficiency_ax, workers, [s.efficiency for s in summaries], "measured S/P")
    efficiency_ax.plot(workers, [min(w, cores) / w for w in workers], color="grey", linewidth=1,
                       label="ideal here: min(P, cores)/P")  # fmt: skip
    several = [s for s in summaries if s.workers > 1]  # the serial fraction is undefined for one
    if several:
        figures.median_line(serial_ax, [s.workers for s in several], [s.serial_fraction for s in several],
                            "measured (1/S − 1/P)/(1 − 1/P)")  # fmt: skip
    for label, speedups in _floors(summaries).items():
        efficiency_ax.plot(workers, [sp / w for sp, w in zip(speedups, workers, strict=True)], marker=".",
                           linewidth=1, label=label)  # fmt: skip
        fractions = [karp_flatt(sp, w) for sp, w in zip(speedups, workers, strict=True) if w > 1]
        serial_ax.plot([s.workers for s in several], fractions, marker=".", linewidth=1, label=label)
    efficiency_ax.set_ylim(0, 1.15)
    efficiency_ax.set_ylabel("efficiency E = S / P")
    efficiency_ax.set_title("Efficiency")
    serial_ax.set_ylabel("serial fraction e")
    serial_ax.set_title("Karp–Flatt serial fraction")
    return _save_by_workers(fig, workers, cores, f"Efficiency: {title}", out / "efficiency.png")


def _save_by_workers(fig: Any, workers: list[int], cores: int, title: str, path: Path) -> Path:
    """Every panel of ``fig`` over the worker counts, with the cores marked and a legend; saved."""
    for ax in fig.axes:
        figures.worker_axis(ax, workers)
        figures.mark_cores(ax, cores)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return figures.save(fig, path)


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

    results = run_study(
        specs(plan), data, output, CSV, lambda done: rows_of(done, data, plan.target), announce
    )
    floor = None
    if plan.floor_data is not None:
        if not output.quiet:
            output.console.print("the floor: the same rounds with nothing but pinned processes and pipes")
        floor = floor_speedups(plan, data)
    rows = rows_of(results, data, plan.target, floor)
    write_csv(output.folder / CSV, rows)
    summaries = summarise(rows)
    title = f"{describe(plan, data)}; T1 = {baseline_seconds(rows):.3f} s"
    tables = [("Speedup", header(plan.target), table_rows(summaries, plan.target))]
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
