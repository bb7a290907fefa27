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
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import time
from multiprocessing.connection import Connection, wait
from pathlib import Path

import numpy as np

from actors.executors.arena import Arena
from actors.executors.pool import as_batch_work
from actors.study.kernel_bench import DEFAULT_DATA, THESIS_HYPER, THESIS_LAYOUT
from brain.connectome import Connectome
from brain.data import Dataset, interpret_targets, load_dataset
from brain.errors import UserError
from brain.merge import add_change, add_change_and_snapshot
from brain.step import Math, step

DRIVERS = ("loop", "asyncio")
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


def measure(
    data: Path,
    workers: tuple[int, ...],
    repeat: int,
    worker_batch: int,
    seed: int = 42,
    lines: int | None = None,
    weights: dict | None = None,
) -> dict:
    """Epoch seconds per driver and worker count, repetitions interleaved.

    ``lines``: the first lines of the training set only.  ``weights``, if given, gets
    the weights after the last epoch of each (driver, workers).
    """
    machines = {p: _Machine(data, p, worker_batch, seed, lines) for p in workers}
    seconds: dict[str, dict[int, list[float]]] = {d: {p: [] for p in workers} for d in DRIVERS}
    try:
        for _ in range(repeat):
            for driver in DRIVERS:
                for p in workers:
                    seconds[driver][p].append(epoch_seconds(machines[p], driver))
                    if weights is not None:
                        weights[driver, p] = machines[p].main.copy()
    finally:
        for machine in machines.values():
            machine.close()
    return seconds


def summary(seconds: dict[str, dict[int, list[float]]]) -> list[dict]:
    rows = []
    for driver, by_workers in seconds.items():
        base = statistics.median(by_workers[min(by_workers)])
        for p, values in by_workers.items():
            median = statistics.median(values)
            rows.append({"driver": driver, "workers": p, "median_seconds": median, "min_seconds": min(values),
                         "max_seconds": max(values), "speedup": base / median})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m actors.study.floor", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of the MNIST IDX files")
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated (1,2)")
    parser.add_argument("--repeat", type=int, default=5, help="epochs per driver and worker count (5)")
    parser.add_argument("--worker-batch", type=int, default=100, help="lines per slice (100)")
    parser.add_argument("--lines", type=int, help="train on the first N training lines only")
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
        rows = summary(measure(args.data, workers, args.repeat, args.worker_batch, lines=args.lines))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{'driver':8} {'workers':>7} {'median s':>9} {'range s':>15} {'speedup':>8}")
    for row in rows:
        spread = f"{row['min_seconds']:.3f}–{row['max_seconds']:.3f}"
        print(f"{row['driver']:8} {row['workers']:>7} {row['median_seconds']:>9.3f} {spread:>15} "
              f"{row['speedup']:>7.2f}×")  # fmt: skip
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
