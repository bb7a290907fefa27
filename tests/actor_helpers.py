"""Builders shared by the actor tests: a small MNIST subset, passes in an arena, process checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from actors.coordinator import PassPlan
from actors.executors.arena import Arena
from actors.executors.step import Workload
from actors.workspace import SharedData, share_dataset
from brain.connectome import Connectome
from brain.data import Dataset, interpret_targets, load_dataset, write_csv
from brain.hyper import Hyper
from brain.layout import Layout
from brain.step import Math

REPO = Path(__file__).resolve().parent.parent
# The thesis network and hyper-parameters (batch/default.txt).
LAYOUT = Layout.of(("Identity", 784), ("ELU", 100), ("SoftMax", 10))
HYPER = Hyper(learning_rate=0.8, lambda_=1e-7)


@cache
def mnist_subset(mnist_dir: Path, train_lines: int, test_lines: int) -> tuple[Dataset, Dataset]:
    """The first ``train_lines`` MNIST training images and the first ``test_lines`` test images."""
    train = load_dataset(mnist_dir / "train-images-idx3-ubyte.gz")
    test = load_dataset(mnist_dir / "t10k-images-idx3-ubyte.gz")
    return (
        Dataset(train.inputs[:train_lines], train.targets[:train_lines], f"train[:{train_lines}]"),
        Dataset(test.inputs[:test_lines], test.targets[:test_lines], f"test[:{test_lines}]"),
    )


def mnist_csv(
    mnist_dir: Path, folder: Path, train_lines: int, test_lines: int, names: tuple[str, str]
) -> tuple[Path, Path]:
    """The first MNIST training and test images (``mnist_subset``) as CSV files ``names`` in ``folder``."""
    paths = (folder / names[0], folder / names[1])
    for dataset, path in zip(mnist_subset(mnist_dir, train_lines, test_lines), paths, strict=True):
        write_csv(dataset, path)
    return paths


def thesis_folder(mnist_dir: Path, folder: Path, train_lines: int, test_lines: int) -> Path:
    """``folder`` holding the first MNIST images as ``train.csv`` and ``test.csv`` and the thesis
    network (784-100-10) as ``net.txt``."""
    mnist_csv(mnist_dir, folder, train_lines, test_lines, ("train.csv", "test.csv"))
    (folder / "net.txt").write_text("Identity, 784\nELU, 100\nSoftMax, 10\n")
    return folder


def share_data(arena: Arena, name: str, dataset: Dataset, order: np.ndarray) -> SharedData:
    """The data set in the arena as the runner lays it out, read in ``order``."""
    shared = share_dataset(arena, name, dataset, interpret_targets(dataset, LAYOUT.n_outputs))
    order_array, order_spec = arena.share(f"{name}-given-order", np.asarray(order, np.int64))
    return replace(shared, order=order_spec, order_array=order_array)


class SharedNetwork:
    """The main connectome, the workers' replicas and the round's snapshot, in an arena."""

    def __init__(self, arena: Arena, parallel: int, seed: int = 42) -> None:
        self.parallel = parallel
        weights = Connectome.uniform(LAYOUT, -0.1, 0.1, seed).weights
        self.main, self.main_spec = arena.share("main", weights)
        self.replicas, self.replicas_spec = arena.array("replicas", (parallel, LAYOUT.n_weights), np.float64)
        self.state, self.state_spec = arena.array("state", (LAYOUT.n_weights,), np.float64)

    def plan(self, mode: str, data: SharedData, worker_batch: int = 100) -> PassPlan:
        """A pass over ``data`` with channels of capacity Parallel, as the runner makes it."""
        work = Workload(
            mode, data.inputs, data.labels, data.direct, data.order, self.main_spec, self.replicas_spec,
            Math(LAYOUT, HYPER), state=self.state_spec,
        )  # fmt: skip
        return PassPlan(
            mode, data.lines, self.parallel, worker_batch, self.parallel, self.parallel, work,
            self.main, self.replicas, state=self.state,
        )  # fmt: skip


# --- processes, read from /proc (no psutil) ----------------------------------------


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    state, ppid = text.rsplit(")", 1)[1].split()[:2]
    return state, int(ppid)


def _all_pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def running(pid: int) -> bool:
    """Whether ``pid`` is a process that has not exited (a zombie has exited)."""
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def parent(pid: int) -> int | None:
    stat = _stat(pid)
    return None if stat is None else stat[1]


def descendants(pid: int) -> set[int]:
    """Every running process below ``pid`` in the process tree."""
    children: dict[int, list[int]] = {}
    for other in _all_pids():
        stat = _stat(other)
        if stat is not None and stat[0] not in ("Z", "X"):
            children.setdefault(stat[1], []).append(other)
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


def carrying(variable: str, value: str) -> set[int]:
    """Running processes whose environment holds ``variable=value`` (children inherit it)."""
    needle = f"{variable}={value}".encode()
    found = set()
    for pid in _all_pids():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if needle in environ.split(b"\0") and running(pid):
            found.add(pid)
    return found


def wait_until(condition, seconds: float = 5.0) -> bool:
    """Poll ``condition()`` until it holds or ``seconds`` pass; its last value."""
    deadline = time.monotonic() + seconds
    while not (held := condition()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return bool(held)


def run_until_rounds(batch: Path, logs: Path, rounds: int, seconds: float = 120.0) -> subprocess.Popen:
    """``python -m actors run BATCH --quiet`` started, returned once its JSON log in ``logs`` shows
    ``rounds`` rounds (stdout and stderr are pipes); the test fails if it ends or times out first."""
    process = subprocess.Popen(
        [sys.executable, "-m", "actors", "run", str(batch), "--quiet", "--log-dir", str(logs)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for log in logs.glob("*.jsonl"):
            complete = log.read_text().splitlines()[:-1]  # the last line may be half-written
            if sum(json.loads(line)["event"] == "round" for line in complete) >= rounds:
                return process
        if process.poll() is not None:
            pytest.fail(f"the run ended before it reached round {rounds}: {process.stderr.read()}")
        time.sleep(0.02)
    process.kill()
    pytest.fail(f"the run never reached round {rounds}")


def naming(text: str) -> set[int]:
    """Running processes (not this one) whose command line holds ``text``."""
    return {pid for pid in _all_pids() if pid != os.getpid() and text in cmdline(pid) and running(pid)}


def ray_processes(session_dir: str) -> set[int]:
    """The processes of a Ray session on this machine: those naming its folder (GCS, raylets,
    workers …) and everything below them (the raylets' agents)."""
    found = naming(session_dir)
    for pid in list(found):
        found |= descendants(pid)
    return found
