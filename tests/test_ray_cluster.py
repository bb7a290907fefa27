"""The ray executor on a cluster of three nodes on this machine: placement, data once per node, node loss.

``ray.cluster_utils.Cluster`` starts each node as Ray's own tests do: its own raylet
and its own object store, so what crosses between nodes is fetched or pushed as it
would be between machines.  The head is the driver's node and has no CPU, so every
worker runs on another node and every step crosses; ``node0`` has 1 CPU and ``node1``
2, so that spreading and packing differ, and each carries a custom resource of its
name by which the tests tell the nodes apart.  The tests that remove a node come
last: the node-loss test removes ``node0`` (its worker moves to ``node1``), the
no-room test then removes ``node1``.  After the module, no process of the cluster
is left (checked by PID).
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path

import anyio
import numpy as np
import pytest

ray = pytest.importorskip("ray")

from actor_helpers import (  # noqa: E402
    LAYOUT,
    SharedNetwork,
    cmdline,
    mnist_subset,
    ray_processes,
    running,
    share_data,
    thesis_folder,
    wait_until,
)
from ray.cluster_utils import Cluster  # noqa: E402

from actors.cli import main as cli  # noqa: E402
from actors.coordinator import RoundRecord, run_pass  # noqa: E402
from actors.executors import ray as ray_executor  # noqa: E402
from actors.executors.arena import Arena  # noqa: E402
from actors.executors.ray import RayExecutor, StepActor, by_value  # noqa: E402
from brain.data import interpret_targets, load_dataset  # noqa: E402
from brain.persistence import load_persistence  # noqa: E402

pytestmark = pytest.mark.slow

TRAIN_LINES = 2000
TEST_LINES = 500
STORE = 80 * 2**20  # bytes of each node's object store: small (Ray's least is 75 MiB)
NODES = {"node0": 1, "node1": 2}  # CPUs
START_SECONDS = 180.0
GONE_WITHIN = 60.0  # seconds for the cluster's processes to end after its shutdown, on a loaded machine


class ClusterHere:
    """The module's cluster: the head and ``NODES``, and every process of it seen so far."""

    def __init__(self) -> None:
        self.cluster = Cluster()
        self.cluster.add_node(wait=False, num_cpus=0, include_dashboard=False, object_store_memory=STORE)
        self.session = self.cluster.head_node.get_session_dir_path()
        self.nodes = {
            name: self.cluster.add_node(
                wait=False, num_cpus=cpus, resources={name: cpus}, object_store_memory=STORE
            )
            for name, cpus in NODES.items()
        }
        self.cluster.wait_for_nodes(timeout=START_SECONDS)  # Ray waits 30 s: short on a loaded machine
        self.ids = {name: node.node_id for name, node in self.nodes.items()}
        self.seen: set[int] = set()

    def name_of(self, node_id: str) -> str:
        """``node0`` or ``node1``, by the custom resource Ray lists for the node."""
        (entry,) = (entry for entry in ray.nodes() if entry["NodeID"] == node_id)
        (name,) = set(entry["Resources"]) & set(NODES)
        assert self.ids[name] == node_id
        return name

    def remove(self, name: str) -> None:
        self.seen |= ray_processes(self.session)
        self.cluster.remove_node(self.nodes.pop(name))

    def shutdown(self) -> None:
        self.seen |= ray_processes(self.session)
        ray.shutdown()
        self.cluster.shutdown()


@pytest.fixture(scope="module")
def cluster():
    # Ray's folder for the cluster (sessions, sockets, the address file of `auto`) apart from other
    # instances on this machine; short, for the sockets' path limit.
    folder = tempfile.mkdtemp(prefix="ray-cluster-", dir="/tmp")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_TMPDIR", folder)
        yield from _cluster()
    shutil.rmtree(folder, ignore_errors=True)


def _cluster():
    here = ClusterHere()
    try:
        ray.init(address=here.cluster.address, logging_level=logging.ERROR, log_to_driver=False)
        yield here
    finally:
        here.shutdown()
    assert here.seen, "no process of the cluster was ever seen"
    left = lambda: [pid for pid in here.seen if running(pid)]  # noqa: E731
    assert wait_until(lambda: not left(), GONE_WITHIN), [cmdline(pid) for pid in left()]


@pytest.fixture(scope="module")
def mnist_small(mnist_dir):
    return mnist_subset(mnist_dir, TRAIN_LINES, TEST_LINES)


def _data_bytes(dataset) -> int:
    targets = interpret_targets(dataset, LAYOUT.n_outputs)
    return dataset.inputs.nbytes + targets.labels.nbytes + targets.direct.nbytes


def _copies(moved: int, dataset) -> float:
    """How many copies of the data set ``moved`` bytes are (Ray adds a header of a few hundred bytes
    to each object), to two decimals."""
    return round(moved / _data_bytes(dataset), 2)


def _batch(folder: Path, executor: str) -> Path:
    """A thesis epoch, a modern one (Adam, mini-batches) and a test, one worker, each network saved."""
    batch = folder / f"{executor}.txt"
    batch.write_text(
        "NetworkFile: net.txt\nTrainFile: train.csv\nTestFile: test.csv\n"
        f"Executor: {executor}\nParallel: 1\nWorkerBatch: 100\nResultFile: {executor}.csv\n"
        "LearningRate: 0.8\nLambda: 1e-7\nMinWeight: -0.1\nMaxWeight: 0.1\n"
        f"PersistenceFile: {executor}-thesis.npz\nTrain: 1\nTest: 1\n"
        "Semantics: Modern\nLoss: CrossEntropy\nInit: He\nOptimizer: Adam\nLearningRate: 0.001\n"
        f"Lambda: 0\nUpdate: MiniBatch\nMiniBatch: 20\nPersistenceFile: {executor}-modern.npz\nTrain: 1\n"
    )
    return batch


@pytest.fixture
def folder(mnist_dir, tmp_path) -> Path:
    return thesis_folder(mnist_dir, tmp_path, TRAIN_LINES, TEST_LINES)


def _events(logs: Path, name: str) -> list[dict]:
    (log,) = logs.glob("*.jsonl")
    return [record for line in log.read_text().splitlines() if (record := json.loads(line))["event"] == name]


def test_one_worker_on_another_node_trains_the_weights_and_optimizer_state_of_the_process_executor(
    cluster, folder, capsys
):
    for executor in ("process", "ray"):
        logs = folder / f"logs-{executor}"
        assert cli(["run", str(_batch(folder, executor)), "--quiet", "--log-dir", str(logs)]) == 0
    for semantics in ("thesis", "modern"):
        by_process = load_persistence(folder / f"process-{semantics}.npz")
        by_ray = load_persistence(folder / f"ray-{semantics}.npz")
        assert by_ray.semantics == by_process.semantics == semantics
        assert np.array_equal(by_ray.weights, by_process.weights), semantics
        assert set(by_ray.extra) == set(by_process.extra)
        for name, saved in by_process.extra.items():
            assert np.array_equal(by_ray.extra[name], saved), (semantics, name)
    assert {"m", "v", "step"} <= set(load_persistence(folder / "ray-modern.npz").extra)
    ((placement,),) = [_events(logs, "ray_placement")]
    assert placement["nodes"] == 1 and placement["workers"][0]["node"] != placement["driver_node"]
    # Every step went to the other node and came back: all of it crossed.
    passes = _events(logs, "ray_traffic")
    assert [record["steps"] for record in passes] == [20, 5, 20]
    assert all(record["between_nodes_bytes"] == record["step_bytes"] > 0 for record in passes)
    # The training set goes to the worker's node for the first pass, the test set for the second.
    train, test = (load_dataset(folder / name) for name in ("train.csv", "test.csv"))
    moved = [record["data_moved_bytes"] for record in passes]
    assert [_copies(moved[0], train), _copies(moved[1], test), moved[2]] == [1, 1, 0]
    capsys.readouterr()
    assert cli(["logs", str(next(logs.glob("*.jsonl")))]) == 0
    out = capsys.readouterr().out
    assert "Ray placement spread: 1 node" in out and "worker 0 →" in out


class KeepsEveryRequest(StepActor):
    """A Ray actor that keeps every request it reads alive, as a kept frame of its step would."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = []

    def step(self, request):
        self.requests.append(request)
        return super().step(request)


class KeepsEveryReply(RayExecutor):
    """Keeps every step's reply alive, as a caller may; its actors keep every request."""

    actor_class = KeepsEveryRequest

    def __init__(self, workers: int, **options) -> None:
        super().__init__(workers, **options)
        self.replies = []

    async def _submit(self, worker, request):
        reply = await super()._submit(worker, request)
        self.replies.append(reply)
        return reply


@pytest.mark.asyncio
async def test_messages_kept_alive_on_either_side_do_not_stall_the_next_step_from_another_node(
    cluster, mnist_small, monkeypatch
):
    # Once a message's arrays were views of the channel's memory: one alive, and the next message
    # between nodes never arrived.  Within a minute a stalled step fails the test instead of waiting ten.
    monkeypatch.setattr(ray_executor, "STEP_SECONDS", 60.0)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the actor class, for the actor
    train, _ = mnist_small
    executor = KeepsEveryReply(1, retries=0)
    try:
        with Arena() as arena:
            data = share_data(arena, "train", train, np.arange(TRAIN_LINES))
            outcome = await run_pass(SharedNetwork(arena, 1).plan("train", data), executor)
        assert executor.placement.between_nodes(0)
        kept = ray.get(executor.actor(0).__ray_call__.remote(lambda actor: len(actor.requests)))
    finally:
        executor.close()
        ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert outcome.lines == TRAIN_LINES
    assert len(executor.replies) == kept == TRAIN_LINES // 100


@pytest.mark.asyncio
async def test_spread_workers_get_the_data_once_per_node_and_a_lost_nodes_worker_moves_to_a_surviving_one(
    cluster, mnist_small
):
    train, _ = mnist_small
    events = []
    executor = RayExecutor(2, on_event=lambda name, **fields: events.append((name, fields)))
    slices = []

    def on_round(record: RoundRecord) -> None:
        slices.extend((report.slice.start, report.slice.stop) for report in record.reports)
        if record.round == 3:
            cluster.remove("node0")

    try:
        with Arena() as arena:
            data = share_data(arena, "train", train, np.random.default_rng(7).permutation(TRAIN_LINES))
            network = SharedNetwork(arena, 2)
            plan = network.plan("train", data)
            await executor.prepare(plan.work)
            placed = {worker: cluster.name_of(node) for worker, node in executor.placement.nodes.items()}
            moved = executor.traffic.data_moved_bytes
            outcome = await run_pass(plan, executor, on_round)
            assert np.isfinite(network.main).all()
        now = {worker: cluster.name_of(node) for worker, node in executor.placement.nodes.items()}
    finally:
        executor.close()
    # Spread: one worker on each node, though node1 has room for both.
    assert sorted(placed.values()) == ["node0", "node1"]
    (victim,) = [worker for worker, name in placed.items() if name == "node0"]
    placement = dict(events)["ray_placement"]
    assert placement["placement"] == "spread" and placement["nodes"] == 2
    assert placement["driver_node"] not in {entry["node"] for entry in placement["workers"]}
    # Put once on the driver's node, then fetched by each of the two nodes.
    assert _copies(moved, train) == 2
    assert outcome.lines == TRAIN_LINES and not outcome.stopped
    covered = np.zeros(TRAIN_LINES, int)
    for start, stop in slices:
        covered[start:stop] += 1
    assert (covered == 1).all()
    assert now == {0: "node1", 1: "node1"}
    names = [name for name, _ in events]
    assert names.count("ray_node_lost") == 1 and names.count("ray_actor_lost") == 1
    lost = dict(events)["ray_node_lost"]
    assert lost["workers"] == [victim] and lost["cpus_left"] == 2
    assert dict(events)["ray_actor_lost"]["worker"] == victim
    # node1 had its copy of the data already: the replacement fetched nothing.
    assert executor.traffic.data_moved_bytes == moved
    assert names[-1] == "ray_traffic" and dict(events)["ray_traffic"]["restarts"] == 1


def test_when_no_node_can_take_the_workers_the_run_ends_with_one_error_and_a_checkpoint(
    cluster, folder, capsys, monkeypatch
):
    batch = folder / "packed.txt"
    batch.write_text(
        "NetworkFile: net.txt\nTrainFile: train.csv\nLearningRate: 0.8\nLambda: 1e-7\n"
        "MinWeight: -0.1\nMaxWeight: 0.1\nWorkerBatch: 100\nParallel: 2\nExecutor: ray\n"
        "RayPlacement: pack\nPersistenceFile: packed.npz\nTrain: 2\n"
    )
    submit, handed = RayExecutor._submit, []

    async def submit_then_lose_node1(self, worker, request):
        """The 25th training step (epoch 2, round 3) is handed to its actor, then node1 goes."""
        if request[0] == "train":
            handed.append(worker)
            if len(handed) == 25:
                reply = self.graph(worker).execute(by_value(request))
                cluster.remove("node1")
                return await anyio.to_thread.run_sync(self._get, reply)
        return await submit(self, worker, request)

    monkeypatch.setattr(RayExecutor, "_submit", submit_then_lose_node1)
    logs = folder / "logs"
    status = cli(["run", str(batch), "--quiet", "--log-dir", str(logs)])
    err = capsys.readouterr().err
    assert len(handed) >= 25 and "node1" not in cluster.nodes
    assert status == 2
    assert err.count("\n") == 1, err
    assert "was lost with workers 0, 1, and no node can take their place: the cluster has" in err
    assert "Parallel 2 needs one per worker" in err
    assert f"checkpoint saved to {folder / 'packed.npz'}; resume with:" in err
    (placement,) = _events(logs, "ray_placement")
    # Packed onto node1, the only node with 2 CPUs: it fetched the training set once for both.
    assert placement["placement"] == "pack" and placement["nodes"] == 1
    assert {entry["node"] for entry in placement["workers"]} == {cluster.ids["node1"]}
    first = _events(logs, "ray_traffic")[0]
    assert first["steps"] == TRAIN_LINES // 100
    assert _copies(first["data_moved_bytes"], load_dataset(folder / "train.csv")) == 1
    (lost,) = _events(logs, "ray_node_lost")
    assert lost["workers"] == [0, 1] and lost["node"] == cluster.ids["node1"]
    (checkpoint,) = _events(logs, "checkpoint_written")
    assert _events(logs, "pass_failed")
    # The first epoch was saved whole; of the second, the two rounds before the loss.
    saved = load_persistence(folder / "packed.npz")
    assert (saved.batch_pass, saved.epoch, saved.epoch_lines_done) == (1, 1, 400)
    assert checkpoint["epoch_lines_done"] == 400
    assert np.isfinite(saved.weights).all()
