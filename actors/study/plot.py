"""``plot RESULTFILE…``: result tables as pictures.

One table: every pass in file order — the accuracy of each test pass above, the
time of each pass below.  Several tables: the thesis' figures drawn from them side
by side — test accuracy per epoch, one line per table and test set (figures 6–7),
and the median epoch time by ``Parallel`` (figures 2 and 4).

Any result table reads: this program's, its older ones (``Train``/``Test``) and the
Go program's own (12 or 15 columns, no ``Epoch`` column: a test row then belongs to
the epoch of the training rows above it).  A table with no training or test row is
a ``UserError``, never an empty picture.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from actors.records.results import read_results
from actors.study import figures
from brain.errors import UserError

_NEEDED = ("Mode", "EpochElapsedTime", "EpochLines")


@dataclass(frozen=True)
class PassRow:
    """One training epoch or test pass of a table: its row number (1-based, data rows only)."""

    number: int
    mode: str
    epoch: int
    parallel: int | None
    lines: int
    seconds: float
    accuracy: float | None  # test passes: percent correct


@dataclass(frozen=True)
class Table:
    """The passes of one result table."""

    path: Path
    passes: tuple[PassRow, ...]
    name: str = ""  # how figures and reports name it; the file's name unless that is ambiguous

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.path.name)

    def of(self, mode: str) -> list[PassRow]:
        return [p for p in self.passes if p.mode == mode]

    def describe(self) -> str:
        return f"{self.name}: {len(self.of('train'))} training epochs, {len(self.of('test'))} test passes"


@dataclass(frozen=True)
class Series:
    """A line of a figure: its label and points; ``table`` and ``lines`` pick its colour and style."""

    label: str
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    table: int = 0  # index of its table among those drawn
    lines: int = 0  # test passes: lines of the test set


def read_table(path: Path) -> Table:
    """The training and test passes of the result table at ``path``.

    Raises ``UserError`` for a file that is not a result table (a column the
    figures need is missing) or holds no training or test row.
    """
    rows = read_results(path)
    missing = [name for name in _NEEDED if rows and name not in rows[0]]
    if missing:
        raise UserError(
            f"not a result table: no column {', '.join(missing)}",
            where=path, line=1, allowed="a result table written by this program or by the Go program",
        )  # fmt: skip
    passes = []
    trained = 0
    for number, row in enumerate(rows, start=1):
        mode = row["Mode"]
        if mode not in ("train", "test"):
            continue
        trained += mode == "train"
        epoch = row.get("Epoch")
        passes.append(
            PassRow(
                number=number, mode=mode, epoch=trained if epoch is None else int(epoch),
                parallel=_integer(row.get("Parallel")), lines=int(row["EpochLines"] or 0),
                seconds=float(row["EpochElapsedTime"] or 0.0), accuracy=_accuracy(row),
            )
        )  # fmt: skip
    if not passes:
        raise UserError(
            "the result file has no rows" if not rows else "the result file has no train or test row",
            where=path, allowed="a result table with at least one train or test row",
        )  # fmt: skip
    return Table(path, tuple(passes))


def _integer(value: Any) -> int | None:
    return None if value is None else int(value)


def _accuracy(row: dict[str, Any]) -> float | None:
    """Percent correct: CorrectPercent, or from Correct and Incorrect (the Go program's 12 columns)."""
    if row.get("CorrectPercent") is not None:
        return float(row["CorrectPercent"])
    correct, incorrect = row.get("Correct"), row.get("Incorrect")
    if correct is None or incorrect is None or int(correct) + int(incorrect) == 0:
        return None
    return 100.0 * int(correct) / (int(correct) + int(incorrect))


def accuracy_series(tables: Sequence[Table]) -> list[Series]:
    """Test accuracy per epoch: one line per table, Parallel and test-set size, in file order."""
    series = []
    for index, table in enumerate(tables):
        groups: dict[tuple[int | None, int], list[PassRow]] = {}
        for p in table.of("test"):
            if p.accuracy is not None:
                groups.setdefault((p.parallel, p.lines), []).append(p)
        for (parallel, lines), passes in groups.items():
            workers = "" if parallel is None else f"Parallel {parallel}, "
            label = f"{table.name}: {workers}test on {lines:,} lines"
            xs, ys = tuple(p.epoch for p in passes), tuple(p.accuracy for p in passes)
            series.append(Series(label, xs, ys, index, lines))  # type: ignore[arg-type]
    return series


def time_series(tables: Sequence[Table]) -> list[Series]:
    """Median training-epoch time by Parallel: one point per table and Parallel."""
    series = []
    for index, table in enumerate(tables):
        by_parallel: dict[int, list[float]] = {}
        for p in table.of("train"):
            if p.parallel is not None:
                by_parallel.setdefault(p.parallel, []).append(p.seconds)
        if by_parallel:
            xs = tuple(sorted(by_parallel))
            ys = tuple(statistics.median(by_parallel[x]) for x in xs)
            series.append(Series(table.name, xs, ys, index))
    return series


def plot_results(paths: Sequence[Path], out: Path, report: Callable[[str], None] = print) -> Path:
    """Draw the result tables at ``paths`` into the PNG ``out``; ``report`` gets one line per table.

    Every table is read (and refused) before anything is drawn.
    """
    tables = [replace(read_table(path), name=name) for path, name in zip(paths, _names(paths), strict=True)]
    for table in tables:
        report(table.describe())
    if len(tables) == 1:
        return _one_table(tables[0], out)
    return _several_tables(tables, out)


def _names(paths: Sequence[Path]) -> list[str]:
    """Each file's name, with as many of its folders as it takes to tell equal names apart."""
    parts = [Path(os.path.abspath(path)).parts for path in paths]
    for depth in range(1, max(len(p) for p in parts) + 1):
        names = [str(Path(*p[-depth:])) for p in parts]
        if len(set(names)) == len(names):
            return names
    return [str(path) for path in paths]  # the same file twice


def _several_tables(tables: Sequence[Table], out: Path) -> Path:
    """The thesis' figures from several tables: accuracy growth per epoch, epoch time by Parallel."""
    fig, (accuracy_ax, time_ax) = figures.figure(figures.WIDE, 1, 2)
    colours = figures.pyplot().rcParams["axes.prop_cycle"].by_key()["color"]
    accuracy = accuracy_series(tables)
    smallest = {s.table: min(t.lines for t in accuracy if t.table == s.table) for s in accuracy}
    for line in accuracy:
        # One colour per table; the larger test set of a table (the original tested on the
        # training set too) dashed.
        style = "-" if line.lines == smallest[line.table] else "--"
        marker = "." if len(line.xs) > 20 else "o"
        colour = colours[line.table % len(colours)]
        accuracy_ax.plot(line.xs, line.ys, style, marker=marker, color=colour, label=line.label)
    if not accuracy:
        accuracy_ax.text(0.5, 0.5, "no test passes", ha="center", transform=accuracy_ax.transAxes)
    accuracy_ax.set_xlabel("epoch")
    accuracy_ax.set_ylabel("test accuracy (%)")
    accuracy_ax.set_title("Accuracy growth per epoch")
    times = time_series(tables)
    for line in times:
        time_ax.plot(line.xs, line.ys, "o-", color=colours[line.table % len(colours)], label=line.label)
    if not times:
        time_ax.text(0.5, 0.5, "no training epochs", ha="center", transform=time_ax.transAxes)
    seconds = [y for line in times for y in line.ys if y > 0]
    if seconds and max(seconds) > 20 * min(seconds):  # e.g. the Banana Pi's epochs beside ours
        time_ax.set_yscale("log")
    time_ax.set_xlabel("Parallel (workers)")
    time_ax.set_ylabel("median training epoch (s)")
    time_ax.set_title("Epoch time by Parallel")
    for ax in (accuracy_ax, time_ax):
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return figures.save(fig, out)


def _one_table(table: Table, out: Path) -> Path:
    """Every pass of one table in file order: accuracy of each test pass, time of each pass."""
    tests, trains = table.of("test"), table.of("train")
    fig, (accuracy_ax, time_ax) = figures.figure(figures.TALL, 2, 1, sharex=True)
    scored = [p for p in tests if p.accuracy is not None]
    if scored:
        accuracy_ax.plot([p.number for p in scored], [p.accuracy for p in scored], "o-", color="tab:green")
        for p in scored:
            accuracy_ax.annotate(
                f"ep {p.epoch}", (p.number, p.accuracy), fontsize=7, textcoords="offset points",
                xytext=(0, 6), ha="center",
            )  # fmt: skip
    else:
        accuracy_ax.text(0.5, 0.5, "no test passes", ha="center", transform=accuracy_ax.transAxes)
    accuracy_ax.set_ylabel("test accuracy (%)")
    accuracy_ax.set_title("Accuracy of each test pass")
    for label, passes, colour in (("training epoch", trains, "tab:blue"), ("test pass", tests, "tab:orange")):
        if passes:
            time_ax.bar([p.number for p in passes], [p.seconds for p in passes], color=colour, label=label)
    time_ax.set_ylabel("elapsed time (s)")
    time_ax.set_xlabel("pass (row of the result file)")
    time_ax.set_title("Time of each pass")
    time_ax.legend(fontsize=8)
    for ax in (accuracy_ax, time_ax):
        ax.grid(True, alpha=0.3)
    fig.suptitle(table.describe())
    return figures.save(fig, out)
