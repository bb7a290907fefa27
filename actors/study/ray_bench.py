"""``python -m actors.study.ray_bench``: the ray executor against the process pool, on MNIST.

The thesis' benchmark (784-100-10, LearningRate 0.8, Lambda 1e-7, weights ±0.1, the
60,000 training images shuffled, thesis rounds) trained by the coordinator and
worker actors with each executor, for every Parallel and WorkerBatch asked for.
Every run starts from the same weights; one short pass first warms the executor
up (processes or Ray actors started, kernels loaded, the data set shipped).

Per run it measures the epoch's wall time and, from the rounds, the overhead per
round: the round's wall time minus its longest step's compute time (what the
executor, the channels and the merge add), averaged over the rounds.  The ray
executor also counts the bytes it ships per round (starting weights out, rows out, replicas
back), and how many of them went between nodes.  A test pass over the 10,000 test images
gives the accuracy.  Medians of ``--repeat`` runs are printed, and the throughput of ray
relative to the process pool for each WorkerBatch; ``--json`` adds every figure as one
JSON line.  Local Ray instances are started per Parallel, as ``RayAddress: local`` does;
with ``--nodes 1,2`` a local *cluster* of that many nodes instead
(``ray.cluster_utils.Cluster``: each node its own raylet and object store, the driver on
the first, Parallel CPUs shared out among them, the workers spread), so that the same
epoch shows what crossing between nodes costs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from unittest import mock

import anyio
import numpy as np

from actors.coordinator import PassPlan, RoundRecord, run_pass
from actors.executors.arena import Arena
from actors.executors.executor import Executor, make_executor
from actors.executors.step import Workload
from actors.study.kernel_bench import DEFAULT_DATA, THESIS_HYPER, THESIS_LAYOUT
from actors.vocabulary import ExecutorName
from actors.workspace import shuffled_order
from brain.connectome import Connectome
from brain.data import Dataset, interpret_targets, load_dataset
from brain.errors import UserError
from brain.step import Math

SEED = 42
WARM_UP_LINES = 2000


@dataclass(frozen=True)
class Run:
    """One measured training epoch (and the test pass after it)."""

    executor: str
    parallel: int
    nodes: int  # of the Ray cluster (1 for the process pool)
    worker_batch: int
    epoch_seconds: float
    rounds: int
    compute_seconds: float  # the sum over rounds of the round's longest step
    overhead_ms_per_round: float
    bytes_per_round: float  # ray only; 0 for the pool
    between_nodes_bytes_per_round: float  # the part of them that crossed between nodes
    test_accuracy: float


class Bench:
    """The data sets and weights in one arena, passes planned as the runner plans them."""

    def __init__(self, arena: Arena, train: Dataset, test: Dataset, parallel: int) -> None:
        self.parallel = parallel
        self.initial = Connectome.uniform(THESIS_LAYOUT, -0.1, 0.1, SEED).weights
        self.main, self.main_spec = arena.share("main", self.initial)
        self.replicas, self.replicas_spec = arena.array("replicas", (parallel, THESIS_LAYOUT.n_weights), "f8")
        self.state, self.state_spec = arena.array("state", (THESIS_LAYOUT.n_weights,), "f8")
        order = shuffled_order(len(train), SEED, 1)
        self.train = self._share(arena, "train", train, order)
        self.test = self._share(arena, "test", test, np.arange(len(test)))

    def _share(self, arena: Arena, name: str, data: Dataset, order: np.ndarray) -> tuple[Workload, int]:
        targets = interpret_targets(data, THESIS_LAYOUT.n_outputs)
        parts = {"inputs": data.inputs, "labels": targets.labels, "direct": targets.direct}
        specs = [arena.share(f"{name}-{part}", values)[1] for part, values in parts.items()]
        _, order_spec = arena.share(f"{name}-order", np.asarray(order, np.int64))
        mode = "train" if name == "train" else "test"
        work = Workload(
            mode, *specs, order_spec, self.main_spec, self.replicas_spec, Math(THESIS_LAYOUT, THESIS_HYPER),
            state=self.state_spec,
        )  # fmt: skip
        return work, len(data)

    def plan(self, mode: str, worker_batch: int, lines: int | None = None) -> PassPlan:
        work, size = self.train if mode == "train" else self.test
        return PassPlan(
            mode, lines or size, self.parallel, worker_batch, self.parallel, self.parallel, work,
            self.main, self.replicas, state=self.state,
        )  # fmt: skip


async def measure_epoch(bench: Bench, executor: Executor, worker_batch: int, nodes: int = 1) -> Run:
    """Train one epoch from the initial weights, then test; the figures of ``Run``."""
    bench.main[:] = bench.initial
    rounds: list[tuple[float, float]] = []  # (wall seconds, longest step's seconds)
    mark = time.perf_counter()

    def on_round(record: RoundRecord) -> None:
        nonlocal mark
        now = time.perf_counter()
        rounds.append((now - mark, max(report.result.seconds for report in record.reports)))
        mark = now

    before = _round_bytes(executor)
    began = time.perf_counter()
    outcome = await run_pass(bench.plan("train", worker_batch), executor, on_round)
    epoch = time.perf_counter() - began
    after = _round_bytes(executor)
    shipped, crossed = after[0] - before[0], after[1] - before[1]
    tested = await run_pass(bench.plan("test", worker_batch), executor)
    compute = sum(longest for _, longest in rounds)
    return Run(
        executor.name, bench.parallel, nodes if executor.name == ExecutorName.RAY else 1, worker_batch, epoch,
        outcome.rounds, compute, 1e3 * sum(wall - longest for wall, longest in rounds) / len(rounds),
        shipped / outcome.rounds, crossed / outcome.rounds, 100.0 * tested.correct / tested.lines,
    )  # fmt: skip


def _round_bytes(executor: Executor) -> tuple[int, int]:
    """The ray executor's bytes of steps so far, and of them those between nodes; zeros for the pool."""
    traffic = getattr(executor, "traffic", None)
    return (traffic.round_bytes, traffic.between_nodes_bytes) if traffic is not None else (0, 0)


@contextmanager
def local_cluster(parallel: int, nodes: int) -> Iterator[None]:
    """A Ray cluster of ``nodes`` nodes on this machine with ``parallel`` CPUs in all, connected.

    The driver's node comes first and gets the larger share.  Ray's folder is a fresh
    temporary one, apart from other instances on this machine.
    """
    import ray
    from ray.cluster_utils import Cluster

    from actors.executors.ray_session import QUIET

    if not 1 <= nodes <= parallel:
        raise UserError(f"--nodes {nodes} for Parallel {parallel}", allowed=f"1 to {parallel} nodes")
    shares = [len(part) for part in np.array_split(np.arange(parallel), nodes)]
    with (
        tempfile.TemporaryDirectory(prefix="ray-bench-", dir="/tmp") as folder,
        mock.patch.dict(os.environ, {"RAY_TMPDIR": folder}),
    ):
        cluster = Cluster(
            initialize_head=True, head_node_args={"num_cpus": shares[0], "include_dashboard": False}
        )
        try:
            for cpus in shares[1:]:
                cluster.add_node(num_cpus=cpus)
            ray.init(address=cluster.address, **QUIET)
            yield
        finally:
            ray.shutdown()
            cluster.shutdown()


async def measure(args: argparse.Namespace) -> list[Run]:
    """Every run of every (Parallel, WorkerBatch), the executors taking turns run by run.

    Taking turns exposes both executors alike to whatever else the machine is doing.
    """
    train = load_dataset(args.data / "train-images-idx3-ubyte.gz")
    test = load_dataset(args.data / "t10k-images-idx3-ubyte.gz")
    runs = []
    for parallel in args.parallel:
        for nodes in args.nodes or [None]:
            with Arena() as arena, ExitStack() as stack:
                if nodes is not None and ExecutorName.RAY in args.executors:
                    stack.enter_context(local_cluster(parallel, nodes))
                bench = Bench(arena, train, test, parallel)
                executors = []
                for name in args.executors:
                    executor = make_executor(name, parallel)
                    stack.callback(executor.close)
                    await run_pass(bench.plan("train", args.worker_batch[0], WARM_UP_LINES), executor)
                    await run_pass(bench.plan("test", args.worker_batch[0], WARM_UP_LINES), executor)
                    executors.append(executor)
                    _print_data_moved(executor, nodes or 1)
                for worker_batch in args.worker_batch:
                    for _ in range(args.repeat):
                        for executor in executors:
                            run = await measure_epoch(bench, executor, worker_batch, nodes or 1)
                            print(_row(run), flush=True)
                            runs.append(run)
    return runs


def _print_data_moved(executor: Executor, nodes: int) -> None:
    """What the ray executor's warm-up put into the object store and other nodes fetched."""
    traffic = getattr(executor, "traffic", None)
    if traffic is not None:
        print(
            f"ray on {nodes} node(s): data sets put {traffic.data_bytes / 1e6:.1f} MB, fetched by "
            f"other nodes {traffic.data_moved_bytes / 1e6:.1f} MB (once, before any epoch is timed)"
        )


COLUMNS = (
    "executor", "parallel", "nodes", "worker_batch", "epoch_seconds", "overhead_ms_per_round",
    "compute_seconds", "rounds", "bytes_per_round", "between_nodes_bytes_per_round", "test_accuracy",
)  # fmt: skip


def _row(run: Run | dict) -> str:
    fields = asdict(run) if isinstance(run, Run) else run
    return "  ".join(
        f"{fields[key]:>9.3f}" if isinstance(fields[key], float) else f"{fields[key]!s:>9}" for key in COLUMNS
    )


def summarise(runs: list[Run]) -> list[dict]:
    """The median of every figure per (executor, Parallel, nodes, WorkerBatch)."""
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        groups.setdefault((run.executor, run.parallel, run.nodes, run.worker_batch), []).append(run)
    rows = []
    for (executor, parallel, nodes, worker_batch), group in groups.items():
        row = {
            "executor": executor, "parallel": parallel, "nodes": nodes, "worker_batch": worker_batch,
            "runs": len(group),
        }  # fmt: skip
        for key in COLUMNS[4:]:
            row[key] = statistics.median(getattr(run, key) for run in group)
        rows.append(row)
    return rows


def throughput_ratios(rows: list[dict]) -> list[tuple[int, int, int, float]]:
    """(Parallel, nodes, WorkerBatch, ray's lines per second / the pool's) where both were measured."""
    pool = {(row["parallel"], row["worker_batch"]): row["epoch_seconds"] for row in rows
            if row["executor"] == ExecutorName.PROCESS}  # fmt: skip
    return [
        (row["parallel"], row["nodes"], row["worker_batch"], pool[key] / row["epoch_seconds"])
        for row in rows
        if row["executor"] == ExecutorName.RAY and (key := (row["parallel"], row["worker_batch"])) in pool
    ]


def _numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",")]


def _executors(text: str) -> list[ExecutorName]:
    return [ExecutorName(part) for part in text.split(",")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m actors.study.ray_bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of the MNIST .gz files")
    parser.add_argument("--parallel", type=_numbers, default=[1, 2, 4], help="e.g. 1,2,4")
    parser.add_argument("--worker-batch", type=_numbers, default=[100], help="e.g. 100,200,500")
    parser.add_argument(
        "--nodes", type=_numbers, default=None, help="Ray on a local cluster of this many nodes, e.g. 1,2"
    )
    default = [ExecutorName.PROCESS, ExecutorName.RAY]
    parser.add_argument("--executors", type=_executors, default=default, help="e.g. process,ray")
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration (medians reported)")
    parser.add_argument("--json", action="store_true", help="print the medians as one JSON line at the end")
    args = parser.parse_args(argv)
    print("  ".join(f"{key[:9]:>9}" for key in COLUMNS))
    try:
        runs = anyio.run(measure, args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    rows = summarise(runs)
    print("\nmedians")
    for row in rows:
        print(_row(row))
    for parallel, nodes, batch, ratio in throughput_ratios(rows):
        print(
            f"Parallel {parallel}, {nodes} node{'s' * (nodes > 1)}, WorkerBatch {batch}: "
            f"ray at {100 * ratio:.0f} % of the pool's throughput"
        )
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
