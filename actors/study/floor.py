"""``python -m actors.study.floor``: what a thesis round costs with nothing but processes and pipes.

The runtime's round protocol — every step starts from the round's snapshot, the
k-th report of n is merged with 1/k, the last merge takes the next snapshot — run
by the smallest program that can: no channels, no actors, no logs, no progress.
Its worker processes are forked once, pinned one per CPU and marked batch work
to the scheduler as the runtime's pool processes are (``as_batch_work``), and hold the data; a
round moves (worker, start, stop) down a pipe and (worker, seconds) back; replicas
and snapshot live in shared memory, as in the runtime.  Two drivers:

- ``loop``: the parent blocks in ``multiprocessing.connection.wait`` — no event
  loop at all, the floor of any design on this machine;
- ``asyncio``: the parent is an asyncio (uvloop) event loop with one task per
  worker and a queue each way — the floor of an asyncio actor design.

Each driver trains one thesis epoch (784-100-10, WorkerBatch 100) per worker count
and repetition, interleaved, and prints the median epoch time and the speedup over
one worker measured in the same invocation.  Set beside ``bench speedup``, it says
how much of an epoch is the runtime's and how much the machine's.

With ``--runtime BATCH`` the runtime itself runs in the same invocation, as a user
runs it (``python -m actors run BATCH --parallel P --quiet --no-log``, a process of
its own), once per worker count and repetition beside the drivers -- before them in
one repetition, after them in the next -- and its first training pass' epoch
(EpochElapsedTime) is set against the asyncio driver's of the same repetition: the
paired ratio runtime / floor, whose median is the runtime's own cost.  The run writes
its result table and weights into a temporary folder (``--set ResultFile=…``,
``PersistenceFile=…``, removed before every run, so every run starts from the
batch's own weights), never into the batch's files.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection, wait
from pathlib import Path

import numpy as np

from actors.batchfile.parse import load_batch
from actors.executors.arena import Arena
from actors.executors.pool import as_batch_work
from actors.records.results import read_results
from actors.study.kernel_bench import DEFAULT_DATA, THESIS_HYPER, THESIS_LAYOUT
from brain.connectome import Connectome
from brain.data import Dataset, interpret_targets, load_dataset
from brain.errors import UserError
from brain.merge import add_change, add_change_and_snapshot
from brain.step import Math, step

DRIVERS = ("loop", "asyncio")
RUNTIME = "runtime"  # the runtime's own epoch, with --runtime
_STOP = b""


class _Machine:
    """The data, the weights in shared memory, and one pinned process per worker."""

    def __init__(self, data: Path, parallel: int, worker_batch: int, seed: int, lines: int | None) -> None:
        train = load_dataset(data / "train-images-idx3-ubyte.gz")
        if lines is not None:
            train = Dataset(train.inputs[:lines], train.targets[:lines], train.source)
        self.lines = len(train)
        self.worker_batch = worker_batch
        targets = interpret_targets(train, THESIS_LAYOUT.n_outputs)
        self.order = np.random.default_rng([seed, 1]).permutation(self.lines)
        self.initial = Connectome.uniform(THESIS_LAYOUT, -0.1, 0.1, seed).weights
        self.arena = Arena()
        n = len(self.initial)
        self.replicas, _ = self.arena.array("replicas", (parallel, n), np.float64)
        self.state, _ = self.arena.array("state", (n,), np.float64)
        self.main = self.initial.copy()
        add_change(self.main, self.initial, self.initial, 1.0)  # compile before timing
        add_change_and_snapshot(self.main, self.initial, self.initial, 1.0)
        cpus = sorted(os.sched_getaffinity(0))
        context = multiprocessing.get_context("fork")  # the children inherit data and kernels
        self.pipes: list[Connection] = []
        self.processes = []
        for worker in range(parallel):
            mine, theirs = context.Pipe()
            cpu = cpus[worker % len(cpus)]
            args = (theirs, cpu, train.inputs, targets, self.order, self.replicas[worker], self.state)
            process = context.Process(target=_serve, args=args, daemon=True)
            process.start()
            theirs.close()
            self.pipes.append(mine)
            self.processes.append(process)
        for pipe in self.pipes:
            pipe.recv_bytes()  # warmed up

    def reset(self) -> None:
        np.copyto(self.main, self.initial)
        np.copyto(self.state, self.initial)

    def merge(self, worker: int, outstanding: int) -> None:
        merge = add_change if outstanding > 1 else add_change_and_snapshot
        merge(self.main, self.replicas[worker], self.state, float(outstanding))

    def close(self) -> None:
        for pipe in self.pipes:
            pipe.send_bytes(_STOP)
        for process in self.processes:
            process.join(5)
            if process.is_alive():
                process.kill()
        self.arena.close()


def _serve(pipe: Connection, cpu: int, inputs, targets, order, replica, state) -> None:
    os.sched_setaffinity(0, {cpu})
    as_batch_work()
    math = Math(THESIS_LAYOUT, THESIS_HYPER)

    def train(start: int, stop: int) -> None:
        step(replica, inputs, targets, order[start:stop], math, training=True, start=state)

    train(0, 1)  # compiles, or loads from numba's cache
    pipe.send_bytes(b"ready")
    while (request := pipe.recv_bytes()) != _STOP:
        start, stop = json.loads(request)
        began = time.perf_counter()
        train(start, stop)
        pipe.send_bytes(json.dumps(time.perf_counter() - began).encode())


def _loop_epoch(machine: _Machine) -> float:
    began = time.perf_counter()
    cursor, batch = 0, machine.worker_batch
    while cursor < machine.lines:
        waiting: dict[Connection, int] = {}
        for worker, pipe in enumerate(machine.pipes):
            if cursor >= machine.lines:
                break
            stop = min(cursor + batch, machine.lines)
            pipe.send_bytes(json.dumps((cursor, stop)).encode())
            waiting[pipe] = worker
            cursor = stop
        while waiting:
            for pipe in wait(list(waiting)):
                pipe.recv_bytes()
                machine.merge(waiting.pop(pipe), len(waiting) + 1)
    return time.perf_counter() - began


async def _asyncio_epoch(machine: _Machine) -> float:
    loop = asyncio.get_running_loop()
    slices: asyncio.Queue = asyncio.Queue()
    reports: asyncio.Queue = asyncio.Queue()

    async def worker(index: int, pipe: Connection) -> None:
        while (piece := await slices.get()) is not None:
            answered = loop.create_future()
            loop.add_reader(pipe.fileno(), answered.set_result, None)
            pipe.send_bytes(json.dumps(piece).encode())
            try:
                await answered
            finally:
                loop.remove_reader(pipe.fileno())
            pipe.recv_bytes()
            await reports.put(index)

    workers = [asyncio.create_task(worker(i, pipe)) for i, pipe in enumerate(machine.pipes)]
    began = time.perf_counter()
    cursor, batch = 0, machine.worker_batch
    while cursor < machine.lines:
        sent = 0
        while sent < len(workers) and cursor < machine.lines:
            stop = min(cursor + batch, machine.lines)
            slices.put_nowait((cursor, stop))
            cursor, sent = stop, sent + 1
        for outstanding in range(sent, 0, -1):
            machine.merge(await reports.get(), outstanding)
    seconds = time.perf_counter() - began
    for _ in workers:
        slices.put_nowait(None)
    await asyncio.gather(*workers)
    return seconds


def epoch_seconds(machine: _Machine, driver: str) -> float:
    """One epoch from the initial weights with ``driver``; the weights are then the epoch's."""
    machine.reset()
    if driver == "loop":
        return _loop_epoch(machine)
    import uvloop

    return uvloop.run(_asyncio_epoch(machine))


def check_runtime_batch(batch: Path) -> None:
    """Refuse, before anything is measured, a batch the runtime cannot time an epoch of: one that
    does not parse, or whose first pass does not train (a ``UserError``, one line)."""
    try:
        passes = load_batch(batch).passes
    except UserError as error:
        raise UserError(f"--runtime: {str(error).splitlines()[0]}") from None
    if not passes or passes[0].mode != "train":
        allowed = "a batch whose first pass is a Train line, e.g. batch/thesis-epoch.txt"
        raise UserError(f"--runtime: {batch}: its first pass trains nothing (allowed: {allowed})")


def runtime_epoch(batch: Path, workers: int, folder: Path) -> float:
    """The runtime's epoch: ``batch``'s first training pass run with ``workers`` workers, as a
    user runs it, its result table and weights in ``folder``; its EpochElapsedTime.

    A run that fails is a ``UserError`` with the run's own last line.
    """
    results, weights = folder / "runtime.csv", folder / "runtime-weights.txt"
    for path in (results, weights):
        path.unlink(missing_ok=True)
    command = [
        sys.executable, "-m", "actors", "run", str(batch), "--parallel", str(workers), "--quiet", "--no-log",
        "--set", f"ResultFile={results}", "--set", f"PersistenceFile={weights}",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        said = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        raise UserError(f"--runtime: {said[-1].removeprefix('error: ')}")
    return next(row["EpochElapsedTime"] for row in read_results(results) if row["Mode"] == "train")


def measure(
    data: Path,
    workers: tuple[int, ...],
    repeat: int,
    worker_batch: int,
    seed: int = 42,
    lines: int | None = None,
    weights: dict | None = None,
    runtime: Path | None = None,
) -> dict:
    """Epoch seconds per driver and worker count, repetitions interleaved.

    ``lines``: the first lines of the training set only.  ``weights``, if given, gets
    the weights after the last epoch of each (driver, workers).  ``runtime``: a batch
    file whose first training pass the runtime runs beside the drivers (``RUNTIME``,
    see ``runtime_epoch``), first in the even repetitions and last in the odd ones.
    """
    if runtime is not None:
        check_runtime_batch(runtime)
    machines = {p: _Machine(data, p, worker_batch, seed, lines) for p in workers}
    kinds = DRIVERS + ((RUNTIME,) if runtime is not None else ())
    seconds: dict[str, dict[int, list[float]]] = {d: {p: [] for p in workers} for d in kinds}
    try:
        with tempfile.TemporaryDirectory(prefix="floor-runtime-") as folder:
            for repetition in range(repeat):
                first = runtime is not None and repetition % 2 == 0  # the runtime before the drivers
                for kind in (kinds[-1:] + kinds[:-1]) if first else kinds:
                    for p in workers:
                        if kind == RUNTIME:
                            seconds[kind][p].append(runtime_epoch(runtime, p, Path(folder)))
                            continue
                        seconds[kind][p].append(epoch_seconds(machines[p], kind))
                        if weights is not None:
                            weights[kind, p] = machines[p].main.copy()
    finally:
        for machine in machines.values():
            machine.close()
    return seconds


def runtime_over_floor(seconds: dict[str, dict[int, list[float]]], workers: int) -> list[float]:
    """Each repetition's runtime epoch over the asyncio driver's of the same repetition."""
    return [a / b for a, b in zip(seconds[RUNTIME][workers], seconds["asyncio"][workers], strict=True)]


def summary(seconds: dict[str, dict[int, list[float]]]) -> list[dict]:
    rows = []
    for driver, by_workers in seconds.items():
        base = statistics.median(by_workers[min(by_workers)])
        for p, values in by_workers.items():
            median = statistics.median(values)
            row = {"driver": driver, "workers": p, "median_seconds": median, "min_seconds": min(values),
                   "max_seconds": max(values), "speedup": base / median}  # fmt: skip
            if driver == RUNTIME:
                ratios = runtime_over_floor(seconds, p)
                row.update(over_floor=statistics.median(ratios), over_floor_min=min(ratios),
                           over_floor_max=max(ratios))  # fmt: skip
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m actors.study.floor", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of the MNIST IDX files")
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated (1,2)")
    parser.add_argument("--repeat", type=int, default=5, help="epochs per driver and worker count (5)")
    parser.add_argument("--worker-batch", type=int, default=100, help="lines per slice (100)")
    parser.add_argument("--lines", type=int, help="train on the first N training lines only")
    runtime_help = "also run the runtime on BATCH (e.g. batch/thesis-epoch.txt) beside the drivers"
    parser.add_argument("--runtime", type=Path, metavar="BATCH", help=runtime_help)
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON on the last line")
    args = parser.parse_args(argv)
    try:
        workers = tuple(sorted({int(text) for text in args.workers.split(",")}))
        if not workers or min(workers) < 1 or min(args.repeat, args.worker_batch, args.lines or 1) < 1:
            raise ValueError
    except ValueError:
        print(
            "error: --workers takes positive integers like 1,2; --repeat, --worker-batch, --lines ≥ 1",
            file=sys.stderr,
        )
        return 2
    try:
        seconds = measure(
            args.data, workers, args.repeat, args.worker_batch, lines=args.lines, runtime=args.runtime
        )
        rows = summary(seconds)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{'driver':8} {'workers':>7} {'median s':>9} {'range s':>15} {'speedup':>8}")
    for row in rows:
        spread = f"{row['min_seconds']:.3f}–{row['max_seconds']:.3f}"
        print(f"{row['driver']:8} {row['workers']:>7} {row['median_seconds']:>9.3f} {spread:>15} "
              f"{row['speedup']:>7.2f}×")  # fmt: skip
    for row in rows:
        if row["driver"] == RUNTIME:
            spread = f"{row['over_floor_min']:.3f}–{row['over_floor_max']:.3f}"
            print(f"runtime / asyncio floor, {row['workers']} workers: {row['over_floor']:.3f} "
                  f"(median of {args.repeat} pairs, {spread})")  # fmt: skip
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
