"""Shared matplotlib code: the Agg backend (no display), fixed pixel sizes, medians with ranges.

Every figure is saved at ``DPI`` without tight cropping, so its size in pixels is
exactly its size in inches times ``DPI``: ``WIDE`` and ``SINGLE`` below.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from actors.study.tables import Spread
from brain.atomic import atomic_write

DPI = 100
SINGLE = (8.0, 5.0)  # 800 × 500 pixels
WIDE = (12.0, 5.0)  # 1200 × 500 pixels: two panels side by side
TALL = (10.0, 7.0)  # 1000 × 700 pixels: two panels one above the other
PANEL = (6.0, 5.0)  # a grid of panels is 600 × 500 pixels per panel


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (imported here, late: it is slow to import)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure(size: tuple[float, float] = SINGLE, rows: int = 1, columns: int = 1, **options: Any) -> tuple:
    """A new figure of ``size`` inches and its axes (as ``pyplot.subplots`` gives them)."""
    options.setdefault("layout", "constrained")
    return pyplot().subplots(rows, columns, figsize=size, dpi=DPI, **options)


def panel_grid(rows: int, columns: int) -> tuple:
    """A figure of rows × columns panels, ``PANEL`` each, and its axes as a 2-D array."""
    size = (PANEL[0] * columns, PANEL[1] * rows)
    return figure(size, rows, columns, squeeze=False)


def save(fig: Any, path: Path) -> Path:
    """Save ``fig`` as PNG at its exact size, atomically (``brain.atomic``), and release it.

    A path that is a directory, FIFO or device is a ``UserError``, as is a write that fails.
    """
    try:
        atomic_write(path, lambda handle: fig.savefig(handle, dpi=DPI, format="png"))
    finally:
        pyplot().close(fig)
    return path


def median_line(ax: Any, xs: Sequence[float], spreads: Sequence[Spread], label: str, **style: Any) -> None:
    """Medians joined by a line, each with an error bar from the smallest to the largest measurement."""
    medians = [s.median for s in spreads]
    below = [s.median - s.low for s in spreads]
    above = [s.high - s.median for s in spreads]
    ax.errorbar(xs, medians, yerr=[below, above], marker="o", capsize=4, label=label, **style)


def mark_cores(ax: Any, cores: int) -> None:
    """A vertical line at this machine's core count."""
    ax.axvline(cores, color="grey", linestyle=":", linewidth=1.5, label=f"{cores} cores on this machine")


def worker_axis(ax: Any, workers: Sequence[int]) -> None:
    """Worker counts on a log₂ axis, labelled with the counts themselves."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(workers))
    ax.set_xticklabels([str(w) for w in workers])
    ax.set_xlabel("workers (Parallel)")
    ax.grid(True, alpha=0.3)
