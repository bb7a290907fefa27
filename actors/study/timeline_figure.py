"""``trace --png``: a window of rounds as a picture, for readers without a trace viewer.

One row for the coordinator (and the async sender), one per worker, coloured by
state over time; a worker's step is drawn light while it travelled through the
pipes or queued for its process (shared, when there are more workers than
processes), dark while it computed there; a thin red bar under a row is a
channel operation that blocked; dashed lines are the round barriers (sync rounds:
each round ends with its last merge).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from actors.study import figures
from actors.study.timeline import PassTimes, SliceTimes, worker_intervals

COLOURS = {
    "send": "tab:blue",
    "waiting for a report": "#d9d9d9",
    "merge": "tab:purple",
    "waiting for a slice": "#d9d9d9",
    "step (pipes, queueing)": "#b7e4b0",
    "compute": "tab:green",
    "waiting to report": "tab:orange",
    "blocked on a channel": "tab:red",
}
HEIGHT = 0.6  # of a row's bar
BLOCKED = 0.12  # of the bar under it that marks a blocked channel operation


def draw_timeline(times: PassTimes, out: Path) -> Path:
    """Draw ``times`` (a pass, or a window of its rounds) into the PNG ``out`` (``figures.WIDE``)."""
    begin = min(min(piece.at.values()) for piece in times.slices)
    rows = ["coordinator", *(["sender"] if times.asynchronous else [])]
    rows += [f"worker {w}" for w in sorted({piece.worker for piece in times.slices})]
    row_of = {name: index for index, name in enumerate(rows)}
    bars: dict[tuple[str, str], list[tuple[float, float]]] = {}

    def bar(row: str, state: str, span: tuple[int, int] | None) -> None:
        if span is not None:
            bars.setdefault((row, state), []).append(((span[0] - begin) / 1e6, (span[1] - span[0]) / 1e6))

    for piece in times.slices:
        _slice_bars(bar, piece, "sender" if times.asynchronous else "coordinator")
    for sides in times.blocked.values():
        for intervals in sides.values():
            for who, began, ended in intervals:
                if who in row_of:
                    bar(who, "blocked on a channel", (began, ended))
    fig, ax = figures.figure(figures.WIDE)
    drawn: set[str] = set()
    for (row, state), spans in bars.items():
        y = len(rows) - 1 - row_of[row]
        blocked = state == "blocked on a channel"
        low, height = (y - HEIGHT / 2 - BLOCKED, BLOCKED) if blocked else (y - HEIGHT / 2, HEIGHT)
        label = None if state in drawn else state
        drawn.add(state)
        ax.broken_barh(spans, (low, height), facecolors=COLOURS[state], label=label)
    if not times.asynchronous:
        _barriers(ax, times, begin)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(list(reversed(rows)))
    ax.set_xlabel("ms since the first moment shown")
    numbers = times.round_numbers()
    first, last = numbers[0], numbers[-1]
    what = f"reports {first}–{last} (async: no barriers)" if times.asynchronous else f"rounds {first}–{last}"
    start = times.start
    capacities = "/".join(str(start.get(f"{name}_capacity", "?")) for name in ("data", "output"))
    setting = f"Parallel {start.get('parallel', '?')}, {start.get('executor', '?')}, capacity {capacities}"
    ax.set_title(f"{times.title()}, {what}: {setting}", fontsize=10)
    handles, labels = ax.get_legend_handles_labels()
    order = [labels.index(state) for state in COLOURS if state in labels]
    ax.legend([handles[i] for i in order], [labels[i] for i in order], loc="upper center",
              bbox_to_anchor=(0.5, -0.12), ncols=4, fontsize=8, frameon=False)  # fmt: skip
    ax.grid(True, axis="x", alpha=0.3)
    return figures.save(fig, out)


def _slice_bars(bar: Any, piece: SliceTimes, sender: str) -> None:
    worker = f"worker {piece.worker}"
    bar(sender, "send", piece.interval("send_began", "sent"))
    bar("coordinator", "waiting for a report", piece.interval("receive_began", "report_received"))
    bar("coordinator", "merge", piece.interval("merge_began", "merge_ended"))
    states = worker_intervals(piece)
    bar(worker, "waiting for a slice", states["waiting for data"])
    bar(worker, "step (pipes, queueing)", piece.interval("step_called", "step_returned"))
    bar(worker, "compute", states["compute"])
    bar(worker, "waiting to report", states["waiting to report"])


def _barriers(ax: Any, times: PassTimes, begin: int) -> None:
    """A dashed line at the end of each round: its last merge (its last report, in a test pass)."""
    for pieces in times.rounds().values():
        ends = [piece.at.get("merge_ended", piece.at.get("report_received", 0)) for piece in pieces]
        ax.axvline((max(ends) - begin) / 1e6, color="black", linestyle="--", linewidth=0.8, alpha=0.6)
