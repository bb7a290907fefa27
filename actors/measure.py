"""``python -m actors measure BATCH``: a whole run, as a user sees it — wall time and peak memory.

Runs ``python -m actors run BATCH`` in a fresh interpreter ``--repeat`` times and
reports the median and range of the wall time (start-up, data loading and every
pass included) and of the peak memory of the whole process tree (the run, the
fork server and the pool), sampled every 20 ms from ``/proc``.  Two sums are
given: RSS, which counts pages shared between processes once per process (an
upper bound), and PSS, which shares them out (the honest total).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from brain.errors import UserError

SAMPLE_SECONDS = 0.02


@dataclass(frozen=True)
class Measurement:
    seconds: float
    peak_rss_mb: float
    peak_pss_mb: float
    exit_code: int


def measure_run(batch: Path, extra: list[str]) -> Measurement:
    """One run of the batch in a child interpreter, sampled until it exits."""
    command = [sys.executable, "-m", "actors", "run", str(batch), "--quiet", "--no-log", *extra]
    began = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_rss = peak_pss = 0
    while child.poll() is None:
        rss, pss = _tree_memory(child.pid)
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        time.sleep(SAMPLE_SECONDS)
    seconds = time.perf_counter() - began
    if child.returncode != 0:
        raise UserError(f"the run failed: {child.stderr.read().decode().strip()}", where=batch)
    return Measurement(seconds, peak_rss / 1024, peak_pss / 1024, child.returncode)


def _tree_memory(root: int) -> tuple[int, int]:
    """Summed RSS and PSS (kB) of ``root`` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry))
    rss = pss = 0
    stack = [root]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, ()))
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return rss, pss


def main(batch: Path, repeat: int, extra: list[str], report=print) -> list[Measurement]:
    runs = []
    for number in range(1, repeat + 1):
        run = measure_run(batch, extra)
        runs.append(run)
        report(
            f"run {number}: {run.seconds:.2f} s wall, peak RSS {run.peak_rss_mb:.0f} MB, "
            f"peak PSS {run.peak_pss_mb:.0f} MB"
        )
    for name, unit, values in (
        ("wall", "s", [r.seconds for r in runs]),
        ("peak RSS", "MB", [r.peak_rss_mb for r in runs]),
        ("peak PSS", "MB", [r.peak_pss_mb for r in runs]),
    ):
        report(
            f"{name:9} median {statistics.median(values):8.2f} {unit}  "
            f"min {min(values):8.2f}  max {max(values):8.2f}  ({len(values)} runs)"
        )
    return runs
