"""``bench channels``: the context-switching study — channel capacities × rounds × executors.

The thesis' coordinator sends a round's slices into the data channel and takes the
workers' reports from the output channel; both had capacity Parallel.  Here both
capacities are swept — 0 (a rendezvous: every hand-over is a meeting), 1, P, 2P
and unbounded by default — for every data × output pair (``grid`` cross) or with
both equal (``same``), under Sync rounds (a barrier per round) and Async rounds (a
worker gets its next slice at once; needs the runtime's ``Rounds`` directive), and
for each executor.  Every configuration trains the same epochs from the same
weights.

Per configuration the CSV holds the epoch time, the per-round coordination
overhead (a round's wall time minus its slowest step), for each channel the
blocked sends and receives and the seconds spent blocked, the workers' waiting,
the staleness of async merges, the context switches (the kernel's, summed over the
coordinator's and the pool's processes, and the event loop's task resumptions; in
all and per round — a round of Async rounds is one report merged) and the test
accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actors.outcome import PassOutcome
from actors.study import figures
from actors.study.data import StudyData
from actors.study.runs import THESIS, Output, RunResult, RunSpec, epoch_columns, has_directive, run_study
from actors.study.tables import Spread, group, report
from actors.switches import COORDINATOR
from brain.errors import shorten

CHANNEL_FIELDS = (
    "sent",
    "blocked_sends",
    "blocked_receives",
    "send_blocked_seconds",
    "receive_blocked_seconds",
    "high_water",
)
CSV = "channels.csv"
BLOCKED_SECONDS = tuple(
    f"{channel}_{side}_blocked_seconds" for channel in ("data", "output") for side in ("send", "receive")
)


def parse_capacities(text: str) -> tuple[str, ...]:
    """``0,1,P,2P,unbounded`` → the same tokens, checked; ``ValueError`` names a bad one."""
    tokens = tuple(
        part.strip().upper() if part.strip().upper() in ("P", "2P") else part.strip().lower()
        for part in text.split(",")
    )
    for token in tokens:
        if token not in ("P", "2P", "unbounded") and not (token.isdigit()):
            raise ValueError(f"{shorten(token)!r} is not a capacity")
    if not tokens:
        raise ValueError("no capacities")
    return tokens


def capacity_value(token: str, parallel: int) -> float:
    """A capacity token's number for ``parallel`` workers (``math.inf`` for unbounded)."""
    if token == "unbounded":
        return math.inf
    if token in ("P", "2P"):
        return parallel * (2 if token == "2P" else 1)
    return int(token)


def capacity_text(value: float) -> str:
    """As a batch file and the CSV write it."""
    return "unbounded" if math.isinf(value) else str(int(value))


@dataclass(frozen=True)
class ChannelPlan:
    parallel: int = 4
    capacities: tuple[str, ...] = ("0", "1", "P", "2P", "unbounded")
    grid: str = "cross"  # or "same"
    rounds: tuple[str, ...] = ("Sync", "Async")
    executors: tuple[str, ...] = ("thread", "process")
    epochs: int = 1
    repeat: int = 1
    worker_batch: int = 100
    seed: int = 42
    directives: tuple[tuple[str, str], ...] = ()

    def pairs(self) -> list[tuple[float, float]]:
        """(data, output) capacities, without duplicates (P may equal an integer given too)."""
        values = list(dict.fromkeys(capacity_value(token, self.parallel) for token in self.capacities))
        if self.grid == "same":
            return [(value, value) for value in values]
        return [(data, output) for data in values for output in values]

    def usable_rounds(self) -> tuple[str, ...]:
        """Async needs the runtime's Rounds directive; without it the study runs Sync rounds only."""
        return self.rounds if has_directive("rounds") else ("Sync",)


def specs(plan: ChannelPlan) -> list[RunSpec]:
    """One run per repetition × executor × rounds × capacity pair, every one from the same weights."""
    with_rounds = has_directive("rounds")
    runs = []
    for repetition in range(1, plan.repeat + 1):
        for executor in plan.executors:
            for rounds in plan.usable_rounds():
                for data, output in plan.pairs():
                    data_text, output_text = capacity_text(data), capacity_text(output)
                    directives = (
                        *THESIS,
                        ("Parallel", str(plan.parallel)),
                        ("WorkerBatch", str(plan.worker_batch)),
                        ("Executor", executor),
                        ("Seed", str(plan.seed)),
                        ("DataChannelCapacity", data_text),
                        ("OutputChannelCapacity", output_text),
                        *((("Rounds", rounds),) if with_rounds else ()),
                        *plan.directives,
                    )
                    labels = {
                        "executor": executor,
                        "rounds": rounds,
                        "parallel": plan.parallel,
                        "data_capacity": data_text,
                        "output_capacity": output_text,
                        "repetition": repetition,
                    }
                    name = f"{executor}-{rounds.lower()}-data{data_text}-output{output_text}-rep{repetition}"
                    runs.append(RunSpec(name, labels, directives, plan.epochs))
    return runs


def rows_of(results: list[RunResult]) -> list[dict[str, Any]]:
    """One row per run and epoch: the common columns, each channel's statistics, waiting, staleness."""
    rows = []
    for result in results:
        for epoch in result.epochs:
            train = epoch.train
            row = epoch_columns(result, epoch)
            for stats in train.channels:
                for name in CHANNEL_FIELDS:
                    row[f"{stats.name}_{name}"] = getattr(stats, name)
            row["blocked_seconds"] = sum(row[name] for name in BLOCKED_SECONDS)
            row["waiting_for_slices_seconds"] = sum(t.waiting_for_slices for t in train.workers)
            row["waiting_to_report_seconds"] = sum(t.waiting_to_report for t in train.workers)
            row["staleness_mean"] = float(getattr(train, "staleness_mean", 0.0))
            row["staleness_max"] = int(getattr(train, "staleness_max", 0))
            rows.append({**row, **switch_columns(train)})
    return rows


def switch_columns(train: PassOutcome) -> dict[str, float]:
    """The training pass' context switches (``actors.switches``): in all, and per round.

    The kernel's are summed over the coordinator's process and the executor's (the
    pool's); nan where this system does not count them.
    """
    switches, rounds = train.switches, max(train.rounds, 1)
    voluntary, involuntary = switches.total("voluntary"), switches.total("involuntary")
    blocked = sum(stats.blocked_sends + stats.blocked_receives for stats in train.channels)
    columns = {
        "voluntary_switches": voluntary,
        "involuntary_switches": involuntary,
        "migrations": switches.total("migrations"),
        "coordinator_voluntary_switches": switches.total("voluntary", COORDINATOR),
        "coordinator_involuntary_switches": switches.total("involuntary", COORDINATOR),
        "task_resumptions": switches.task_resumptions,
        "switches_per_round": (voluntary + involuntary) / rounds,
        "voluntary_switches_per_round": voluntary / rounds,
        "task_resumptions_per_round": switches.task_resumptions / rounds,
        "blocked_operations_per_round": blocked / rounds,
    }
    return columns


def _key(row: dict[str, Any]) -> tuple[str, str, str, str]:
    return row["executor"], row["rounds"], row["data_capacity"], row["output_capacity"]


HEADER = (
    "executor",
    "rounds",
    "data cap",
    "output cap",
    "epoch (s)",
    "overhead (ms/round)",
    "data blocked sends/receives",
    "output blocked sends/receives",
    "blocked (s)",
    "staleness mean/max",
    "switches/round, all (voluntary)",
    "task resumptions/round",
    "accuracy (%)",
)


def table_rows(rows: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """Medians over repetitions and epochs, one line per configuration."""

    def median(mine: list[dict[str, Any]], name: str, digits: int) -> str:
        return f"{Spread.of(float(row[name]) for row in mine).median:.{digits}f}"

    return [
        (
            executor,
            rounds,
            data,
            output,
            median(mine, "epoch_seconds", 3),
            median(mine, "overhead_ms_per_round", 2),
            f"{median(mine, 'data_blocked_sends', 0)}/{median(mine, 'data_blocked_receives', 0)}",
            f"{median(mine, 'output_blocked_sends', 0)}/{median(mine, 'output_blocked_receives', 0)}",
            median(mine, "blocked_seconds", 2),
            f"{median(mine, 'staleness_mean', 2)}/{median(mine, 'staleness_max', 0)}",
            f"{median(mine, 'switches_per_round', 1)} ({median(mine, 'voluntary_switches_per_round', 1)})",
            median(mine, "task_resumptions_per_round", 1),
            median(mine, "test_accuracy", 2),
        )
        for (executor, rounds, data, output), mine in group(rows, _key).items()
    ]


METRICS = (
    ("epoch_seconds", "training epoch (s)", "channels-time.png"),
    ("overhead_ms_per_round", "coordination overhead (ms per round)", "channels-overhead.png"),
    ("blocked_seconds", "time blocked on both channels, all sides (s)", "channels-blocked.png"),
    ("staleness_mean", "mean staleness of async merges (merges)", "channels-staleness.png"),
    (
        "switches_per_round",
        "context switches per round, voluntary + involuntary, coordinator and pool processes",
        "channels-switches.png",
    ),
    ("task_resumptions_per_round", "event-loop task resumptions per round", "channels-task-switches.png"),
)


def draw(rows: list[dict[str, Any]], plan: ChannelPlan, out: Path, title: str) -> list[Path]:
    """One figure per metric: a panel per executor × rounds, a heatmap of data × output capacity."""
    rounds = plan.usable_rounds()
    paths = []
    for metric, label, name in METRICS:
        if metric == "staleness_mean" and "Async" not in rounds:
            continue
        panels = [
            (e, r) for r in rounds for e in plan.executors if metric != "staleness_mean" or r == "Async"
        ]
        rows_n = 1 if metric == "staleness_mean" else len(rounds)
        columns = len(plan.executors)
        fig, axes = figures.panel_grid(rows_n, columns)
        for ax, (executor, kind) in zip(axes.flat, panels, strict=True):
            mine = [row for row in rows if row["executor"] == executor and row["rounds"] == kind]
            _panel(ax, mine, metric, plan)
            ax.set_title(f"{executor}, {kind} rounds", fontsize=10)
        fig.suptitle(f"{label}\n{title}", fontsize=11)
        paths.append(figures.save(fig, out / name))
    return paths


def _panel(ax: Any, rows: list[dict[str, Any]], metric: str, plan: ChannelPlan) -> None:
    """A heatmap (cross grid) or bars (same capacity for both channels) of a metric's medians."""
    values = list(dict.fromkeys(capacity_text(d) for d, _ in plan.pairs()))
    cells = {
        key[2:]: Spread.of(float(r[metric]) for r in mine).median for key, mine in group(rows, _key).items()
    }
    if plan.grid == "same":
        heights = [cells.get((v, v), math.nan) for v in values]
        ax.bar(range(len(values)), heights, color="tab:blue")
        ax.set_xticks(range(len(values)), values)
        ax.set_xlabel("capacity of both channels (slices)")
        ax.set_ylabel(metric.replace("_", " "))
        return
    import numpy as np

    grid = np.array([[cells.get((d, o), math.nan) for o in values] for d in values])
    image = ax.imshow(grid, cmap="viridis", origin="upper")
    ax.set_xticks(range(len(values)), values)
    ax.set_yticks(range(len(values)), values)
    ax.set_xlabel("output channel capacity (reports)")
    ax.set_ylabel("data channel capacity (slices)")
    middle = np.nanmean(grid) if np.isfinite(grid).any() else 0.0
    for (i, j), value in np.ndenumerate(grid):
        ax.text(
            j,
            i,
            f"{value:.3g}",
            ha="center",
            va="center",
            fontsize=8,
            color="white" if value < middle else "black",
        )
    ax.figure.colorbar(image, ax=ax, shrink=0.8)


def describe(plan: ChannelPlan, data: StudyData) -> str:
    return (
        f"Parallel {plan.parallel}, WorkerBatch {plan.worker_batch}, thesis math, "
        f"{data.train_lines:,} training / {data.test_lines:,} test lines"
    )


def run(plan: ChannelPlan, data: StudyData, output: Output) -> dict[str, Path]:
    """Run the sweep; writes ``channels.csv`` (after every run), ``channels-summary.md`` and the figures."""
    if "Async" in plan.rounds and not has_directive("rounds"):
        output.console.print("this runtime has no Rounds directive: Sync rounds only", style="yellow")

    def announce(result: RunResult) -> str:
        labels, train = result.spec.labels, result.epochs[-1].train
        return (
            f"{labels['executor']:>7} {labels['rounds']:<5} data {labels['data_capacity']:>9} "
            f"output {labels['output_capacity']:>9}: epoch {train.seconds:.3f} s, "
            f"overhead {1000 * train.overhead_seconds / max(train.rounds, 1):.2f} ms/round"
        )

    rows = rows_of(run_study(specs(plan), data, output, CSV, rows_of, announce))
    title = describe(plan, data)
    tables = [("Channel study", HEADER, table_rows(rows))]
    summary = report(output.console, output.folder / "channels-summary.md", title, tables)
    pictures = draw(rows, plan, output.folder, title)
    return {"csv": output.folder / CSV, "summary": summary, **{p.stem: p for p in pictures}}
