"""``plot RESULTFILE``: a result table as a picture — test accuracy and time, pass by pass.

The rows are drawn in file order (a result file collects the passes of every run
of its batch): the upper panel shows the accuracy of each test pass, the lower one
the elapsed time of each training epoch and test pass.
"""

from __future__ import annotations

from pathlib import Path

from actors.results import read_results
from actors.study import figures
from brain.errors import UserError


def plot_results(result_file: Path, out: Path) -> Path:
    """Draw ``result_file`` into the PNG ``out`` (1000 × 700 pixels); ``UserError`` for an empty table."""
    rows = read_results(result_file)
    if not rows:
        raise UserError("the result file has no rows", where=result_file)
    numbers = range(1, len(rows) + 1)
    tests = [(n, row) for n, row in zip(numbers, rows, strict=True) if row["Mode"] == "Test"]
    trains = [(n, row) for n, row in zip(numbers, rows, strict=True) if row["Mode"] == "Train"]
    fig, (accuracy_ax, time_ax) = figures.figure(figures.TALL, 2, 1, sharex=True)
    if tests:
        accuracy_ax.plot(
            [n for n, _ in tests], [row["CorrectPercent"] for _, row in tests], "o-", color="tab:green"
        )
        for n, row in tests:
            accuracy_ax.annotate(
                f"ep {row.get('Epoch', '?')}",
                (n, row["CorrectPercent"]),
                fontsize=7,
                textcoords="offset points",
                xytext=(0, 6),
                ha="center",
            )
    else:
        accuracy_ax.text(
            0.5, 0.5, "no test passes in this file", ha="center", transform=accuracy_ax.transAxes
        )
    accuracy_ax.set_ylabel("test accuracy (%)")
    accuracy_ax.set_title("Accuracy of each test pass")
    for label, passes, colour in (("training epoch", trains, "tab:blue"), ("test pass", tests, "tab:orange")):
        if passes:
            seconds = [row["EpochElapsedTime"] for _, row in passes]
            time_ax.bar([n for n, _ in passes], seconds, color=colour, label=label)
    time_ax.set_ylabel("elapsed time (s)")
    time_ax.set_xlabel("pass (row of the result file)")
    time_ax.set_title("Time of each pass")
    time_ax.legend(fontsize=8)
    for ax in (accuracy_ax, time_ax):
        ax.grid(True, alpha=0.3)
    fig.suptitle(f"{result_file.name}: {len(trains)} training epochs, {len(tests)} test passes")
    return figures.save(fig, out)
