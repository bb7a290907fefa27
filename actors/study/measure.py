"""``python -m actors measure BATCH``: a whole run, as a user sees it — wall time and peak memory.

Runs ``python -m actors run BATCH`` in a fresh interpreter ``--repeat`` times and
reports the median and range of the wall time (start-up, data loading and every
pass included) and of the peak memory of the whole process tree (the run, the
fork server and the pool), sampled from ``/proc``.  Two sums are given: RSS, which
counts pages shared between processes once per process (an upper bound), and PSS,
which shares them out (the honest total).

The sampling must not slow down what it measures, on a machine whose every core
the run keeps busy.  RSS is read every 50 ms from ``statm`` (counters the kernel
keeps: ~0.2 ms for the tree); PSS only every 250 ms, because ``smaps_rollup`` walks
every page table of a process (~8 ms for this tree, holding each process' memory
map lock) — read every 20 ms, as it was, it took a third of a core during the run.
The tree is followed through ``/proc/PID/task/TID/children`` rather than by reading
every process' ``stat``.  A peak shorter than the sampling interval can be missed;
a run's memory rises while it starts and stays at its peak through the passes.

The runs must not advance the user's files: each one works in a temporary folder
on a copy of the batch file whose PersistenceFile and ResultFile name fresh
copies of the user's (``batchfile.relocated``), so every run starts from the same
weights and the user's persistence and result table stay as they were.
"""

from __future__ import annotations

import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from actors.batchfile.parse import load_batch, relocated, sets_output
from actors.batchfile.preflight import preflight
from actors.options import run_overrides
from actors.proc import children_by_parent
from brain.atomic import reported
from brain.errors import UserError, shorten
from brain.user_files import input_problem

SAMPLE_SECONDS = 0.05  # RSS
PSS_SECONDS = 0.25  # PSS: a walk of every page table of the tree, so five times less often


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
    pss_read = -math.inf
    while child.poll() is None:
        tree = _tree(child.pid)
        peak_rss = max(peak_rss, _rss(tree))
        if time.perf_counter() - pss_read >= PSS_SECONDS:
            pss_read = time.perf_counter()
            peak_pss = max(peak_pss, _pss(tree))
        time.sleep(SAMPLE_SECONDS)
    seconds = time.perf_counter() - began
    if child.returncode != 0:
        raise UserError(f"the run failed: {child.stderr.read().decode().strip()}", where=batch)
    return Measurement(seconds, peak_rss / 1024, peak_pss / 1024, child.returncode)


def _tree(root: int) -> list[int]:
    """``root`` and all its descendants alive now."""
    tree, stack = [], [root]
    while stack:
        pid = stack.pop()
        tree.append(pid)
        stack.extend(_children(pid))
    return tree


def _children(pid: int) -> list[int]:
    """The children of ``pid`` (of all its threads); none if it is gone."""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    children = []
    for thread in threads:
        try:
            children += map(int, Path(f"/proc/{pid}/task/{thread}/children").read_text().split())
        except FileNotFoundError:
            if not Path(f"/proc/{pid}/task/{thread}").exists():
                continue  # the thread ended
            return _children_by_scan(pid)  # a kernel without CONFIG_PROC_CHILDREN
        except OSError:
            continue
    return children


def _children_by_scan(parent: int) -> list[int]:
    """The children of ``parent``, found by reading every process' ``stat`` (slower)."""
    return children_by_parent().get(parent, [])


def _rss(tree: list[int]) -> int:
    """Summed resident memory (kB) of the processes in ``tree``, from ``statm``."""
    total = 0
    for pid in tree:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE_KB
        except (OSError, IndexError, ValueError):
            continue
    return total


def _pss(tree: list[int]) -> int:
    """Summed proportional set size (kB) of the processes in ``tree``, from ``smaps_rollup``."""
    total = 0
    for pid in tree:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            continue
    return total


_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


class _Copies:
    """The batch file in a temporary folder, its PersistenceFile and ResultFile replaced by copies."""

    def __init__(self, batch: Path, folder: Path) -> None:
        self.user_batch = batch
        self.outputs = folder / "outputs"
        self.files: dict[Path, Path] = {}  # the user's file -> its copy
        self.batch = folder / batch.name
        self.batch.write_text(relocated(batch, self._place), encoding="utf-8")

    def _place(self, original: Path) -> Path:
        return self.files.setdefault(original, self.outputs / f"{len(self.files)}-{original.name}")

    def refresh(self) -> None:
        """Fresh copies of the user's files, as they are now, for the next run.

        Only a regular file is copied (the pre-flight refused anything else; this says
        so again should one appear since): a FIFO would block the copy, a device such
        as ``/dev/zero`` would fill the disk.
        """
        shutil.rmtree(self.outputs, ignore_errors=True)
        self.outputs.mkdir()
        for original, copy in self.files.items():
            if not original.exists():
                continue  # the run makes it
            if (problem := input_problem(original)) is not None:
                raise UserError(f"{problem}: measure cannot copy it", where=original)
            with reported(original):
                shutil.copyfile(original, copy)

    def as_the_users(self, text: str) -> str:
        """``text`` (a run's error) naming the user's files instead of the copies."""
        for original, copy in (*self.files.items(), (self.user_batch, self.batch)):
            text = text.replace(str(copy), str(original))
        return text


@contextmanager
def _copies(batch: Path) -> Iterator[_Copies]:
    with tempfile.TemporaryDirectory(prefix="actors-measure-") as folder:
        yield _Copies(batch, Path(folder))


def main(batch: Path, repeat: int, extra: list[str], report=print) -> list[Measurement]:
    """Run the batch ``repeat`` times, each on fresh copies of the files it writes; report
    each run and the medians.  A ``UserError`` names the user's files, not the copies."""
    overrides = run_overrides(batch, extra)
    loaded = load_batch(batch, overrides)  # errors name the user's file, before any run
    written = [line for line in overrides if sets_output(line)]
    if written:
        raise UserError(
            f"--run-option sets {shorten(written[0])!r}: measure runs on copies of the files the batch names",
            allowed="PersistenceFile and ResultFile in the batch file",
        )
    preflight(loaded)  # what `check` would refuse, on the user's files, before anything is copied
    runs = []
    with _copies(batch) as copies:
        if copies.files:
            names = ", ".join(str(original) for original in copies.files)
            report(f"each run works on fresh copies of {names} in a temporary folder; these stay as they are")
        for number in range(1, repeat + 1):
            copies.refresh()
            try:
                run = measure_run(copies.batch, extra)
            except UserError as error:
                raise UserError(copies.as_the_users(error.message), where=batch) from None
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
