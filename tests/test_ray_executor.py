"""The ray executor: the same weights as the process pool, a killed Ray actor replaced, clear errors.

One local Ray instance with 2 CPUs serves the whole module (starting Ray takes
seconds); the executors under test find it connected and leave it running.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import replace
from pathlib import Path

import anyio
import numpy as np
import pytest

ray = pytest.importorskip("ray")

from actor_helpers import LAYOUT, SharedNetwork, cmdline, mnist_subset, share_data, thesis_folder  # noqa: E402

from actors.batchfile.settings import DIRECTIVES  # noqa: E402
from actors.cli import main as cli  # noqa: E402
from actors.coordinator import RoundRecord, run_pass  # noqa: E402
from actors.executors.arena import Arena  # noqa: E402
from actors.executors.executor import make_executor  # noqa: E402
from actors.executors.local import InlineExecutor  # noqa: E402
from actors.executors.ray import RayExecutor, RayWorkerLost, by_value  # noqa: E402
from actors.executors.step import warm_up_modern  # noqa: E402
from actors.records.results import read_results  # noqa: E402
from actors.vocabulary import ExecutorName  # noqa: E402
from brain.data import interpret_targets  # noqa: E402
from brain.errors import UserError  # noqa: E402
from brain.modern import Modern, replica_state  # noqa: E402
from brain.persistence import load_persistence  # noqa: E402
from brain.step import Math, Optimizer  # noqa: E402

TRAIN_LINES = 2000
TEST_LINES = 500


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.ERROR)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def mnist_small(mnist_dir):
    return mnist_subset(mnist_dir, TRAIN_LINES, TEST_LINES)


@pytest.fixture
def folder(mnist_dir, tmp_path) -> Path:
    """A folder with the small MNIST as the thesis' CSV files and the thesis network."""
    return thesis_folder(mnist_dir, tmp_path, TRAIN_LINES, TEST_LINES)


def _batch(folder: Path, executor: str, more: str = "") -> Path:
    """The thesis' hyper-parameters (batch/default.txt), one worker, two epochs and a test."""
    batch = folder / f"{executor}.txt"
    batch.write_text(
        "NetworkFile: net.txt\nTrainFile: train.csv\nTestFile: test.csv\n"
        f"PersistenceFile: {executor}.npz\nResultFile: {executor}.csv\n"
        "LearningRate: 0.8\nLambda: 1e-7\nMinWeight: -0.1\nMaxWeight: 0.1\nWorkerBatch: 100\n"
        f"Parallel: 1\nExecutor: {executor}\n{more}Train: 2\nTest: 1\n"
    )
    return batch


def test_the_cli_with_executor_ray_trains_the_weights_of_the_process_executor(folder):
    for executor in ("process", "ray"):
        assert cli(["run", str(_batch(folder, executor)), "--quiet", "--no-log"]) == 0
    by_process = load_persistence(folder / "process.npz")
    by_ray = load_persistence(folder / "ray.npz")
    assert by_ray.epoch == by_process.epoch == 2
    assert np.array_equal(by_ray.weights, by_process.weights)
    process_test, ray_test = (read_results(folder / f"{name}.csv")[-1] for name in ("process", "ray"))
    assert process_test["Mode"] == ray_test["Mode"] == "test"
    assert ray_test["Executor"] == "ray"
    assert (ray_test["Correct"], ray_test["ErrorRate"]) == (
        process_test["Correct"],
        process_test["ErrorRate"],
    )


# Adam (two state arrays and a step count per replica) on mini-batches of 20, float64.
MODERN = (
    "Semantics: Modern\nLoss: CrossEntropy\nInit: He\nOptimizer: Adam\nLearningRate: 0.001\n"
    "Lambda: 0\nLambdaL2: 1e-4\nUpdate: MiniBatch\nMiniBatch: 20\n"
)


@pytest.mark.slow
def test_modern_semantics_with_executor_ray_train_the_weights_and_optimizer_state_of_the_process_executor(
    folder,
):
    # The same function (brain.step.step) on the same float64 arrays in the same order: equal bit for bit.
    for executor in ("process", "ray"):
        assert cli(["run", str(_batch(folder, executor, MODERN)), "--quiet", "--no-log"]) == 0
    by_process = load_persistence(folder / "process.npz")
    by_ray = load_persistence(folder / "ray.npz")
    assert by_ray.semantics == by_process.semantics == "modern"
    assert by_ray.epoch == by_process.epoch == 2
    assert np.array_equal(by_ray.weights, by_process.weights)
    assert set(by_process.extra) >= {"m", "v", "step"}
    assert set(by_ray.extra) == set(by_process.extra)
    # Two epochs of 2000 lines in mini-batches of 20: 200 optimizer steps, counted in the replica's state.
    assert by_ray.extra["step"].tolist() == [200.0]
    for name, saved in by_process.extra.items():
        assert np.array_equal(by_ray.extra[name], saved), name
    process_test, ray_test = (read_results(folder / f"{name}.csv")[-1] for name in ("process", "ray"))
    assert (ray_test["Correct"], ray_test["ErrorRate"]) == (
        process_test["Correct"],
        process_test["ErrorRate"],
    )


@pytest.mark.asyncio
async def test_data_go_out_once_per_executor_and_each_step_takes_its_start(mnist_small):
    train, test = mnist_small
    executor = RayExecutor(1)
    try:
        with Arena() as arena:
            train_data = share_data(arena, "train", train, np.arange(TRAIN_LINES))
            test_data = share_data(arena, "test", test, np.arange(TEST_LINES))
            network = SharedNetwork(arena, 1)
            for _ in range(2):
                await run_pass(network.plan("train", train_data), executor)
            trained = replace(executor.traffic)
            await run_pass(network.plan("test", test_data), executor)
    finally:
        executor.close()
    assert trained.data_bytes == _data_bytes(train)
    steps = 2 * TRAIN_LINES // 100
    assert trained.steps == steps
    assert trained.main_bytes == trained.replica_bytes == steps * LAYOUT.n_weights * 8
    assert trained.rows_bytes == 2 * TRAIN_LINES * 8
    # The test pass: its data once, main with each of its five steps, no replicas back.
    assert executor.traffic.data_bytes == _data_bytes(train) + _data_bytes(test)
    assert executor.traffic.main_bytes == (steps + TEST_LINES // 100) * LAYOUT.n_weights * 8
    assert executor.traffic.replica_bytes == trained.replica_bytes


@pytest.mark.asyncio
async def test_each_ray_actor_on_this_machine_reports_its_context_switches(mnist_small):
    train, _ = mnist_small
    executor = RayExecutor(2)
    try:
        with Arena() as arena:
            data = share_data(arena, "train", train, np.arange(TRAIN_LINES))
            outcome = await run_pass(SharedNetwork(arena, 2).plan("train", data), executor)
            actors = executor.process_ids()
            commands = {name: cmdline(pid) for name, pid in actors.items()}
    finally:
        executor.close()
    assert set(actors) == {"ray actor 0", "ray actor 1"}
    by_name = {process.process: process for process in outcome.switches.processes}
    assert set(by_name) == {"coordinator", *actors}
    for name, pid in actors.items():
        assert by_name[name].pid == pid != os.getpid()
        assert "StepActor" in commands[name]  # the Ray actor's own process
        assert by_name[name].voluntary > 0  # it waited for each of its ten steps


def _data_bytes(dataset) -> int:
    targets = interpret_targets(dataset, LAYOUT.n_outputs)
    return dataset.inputs.nbytes + targets.labels.nbytes + targets.direct.nbytes


class KillsAnActorMidStep(RayExecutor):
    """Kills worker ``victim``'s Ray actor right after handing it its ``at``-th step."""

    def __init__(self, workers: int, victim: int, at: int, **options) -> None:
        super().__init__(workers, **options)
        self.victim, self.at, self.handed = victim, at, 0
        self.killed = []

    async def _submit(self, worker, request):
        if worker != self.victim or request[0] == "echo":
            return await super()._submit(worker, request)
        reply = self.graph(worker).execute(by_value(request))
        self.handed += 1
        if self.handed == self.at:
            self.killed.append(self.actor(worker))
            ray.kill(self.actor(worker))
        return await anyio.to_thread.run_sync(self._get, reply)


@pytest.mark.asyncio
async def test_a_ray_actor_killed_mid_pass_is_replaced_and_every_line_is_trained_once(mnist_small):
    train, _ = mnist_small
    events = []
    executor = KillsAnActorMidStep(2, victim=1, at=4, on_event=lambda name, **fields: events.append(name))
    slices = []

    def on_round(record: RoundRecord) -> None:
        slices.extend((report.slice.start, report.slice.stop) for report in record.reports)

    try:
        with Arena() as arena:
            data = share_data(arena, "train", train, np.random.default_rng(7).permutation(TRAIN_LINES))
            network = SharedNetwork(arena, 2)
            before = network.main.copy()
            outcome = await run_pass(network.plan("train", data), executor, on_round)
            replacement = executor.actor(1)
            assert np.isfinite(network.main).all()
            assert not np.array_equal(network.main, before)
    finally:
        executor.close()
    assert executor.killed, "the test never killed an actor"
    assert replacement is not executor.killed[0]
    assert executor.traffic.restarts == 1
    assert events == ["ray_placement", "ray_actor_lost", "ray_traffic"]  # the node lives: no ray_node_lost
    assert outcome.lines == TRAIN_LINES
    covered = np.zeros(TRAIN_LINES, int)
    for start, stop in slices:
        covered[start:stop] += 1
    assert (covered == 1).all()


async def _inline_and_with_a_death(train, modern: Modern | None = None) -> tuple[list, list, RayExecutor]:
    """One pass at Parallel 1 trained inline, then by Ray with the actor killed on its third step.

    The weights after each, the optimizer state after each (None: thesis semantics), the Ray executor.
    """
    weights, states = [], []
    for executor in (InlineExecutor(1), KillsAnActorMidStep(1, victim=0, at=3)):
        try:
            with Arena() as arena:
                data = share_data(arena, "train", train, np.arange(TRAIN_LINES))
                network = SharedNetwork(arena, 1)
                plan, optimizer = network.plan("train", data), None
                if modern is not None:
                    plan, optimizer = _with_optimizer(arena, plan, modern)
                    await executor.everywhere(warm_up_modern)
                await run_pass(plan, executor)
                weights.append(network.main.copy())
                states.append(optimizer and Optimizer(
                    {name: array.copy() for name, array in optimizer.arrays.items()}, optimizer.steps.copy()
                ))  # fmt: skip
        finally:
            executor.close()
    return weights, states, executor


def _with_optimizer(arena: Arena, plan, modern: Modern):
    """``plan`` with modern math and fresh optimizer state per replica in the arena (as the runner has it)."""
    stacks, steps = replica_state(modern.optimizer, plan.parallel, LAYOUT.n_weights)
    shared = {name: arena.share(f"optimizer-{name}", stack) for name, stack in stacks.items()}
    steps_array, steps_spec = arena.share("optimizer-steps", steps)
    work = replace(
        plan.work, math=Math(LAYOUT, modern), optimizer_steps=steps_spec,
        optimizer_state=tuple((name, spec) for name, (_, spec) in shared.items()),
    )  # fmt: skip
    arrays = {name: array for name, (array, _) in shared.items()}
    return replace(plan, work=work), Optimizer(arrays, steps_array)


@pytest.mark.asyncio
async def test_a_rerun_slice_starts_from_the_rounds_main_connectome(mnist_small):
    train, _ = mnist_small
    weights, _, executor = await _inline_and_with_a_death(train)
    assert executor.traffic.restarts == 1
    assert np.array_equal(weights[0], weights[1])


@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_modern_rerun_slice_starts_from_the_optimizer_state_before_the_lost_step(mnist_small):
    train, _ = mnist_small
    modern = Modern(learning_rate=0.001, optimizer="adam", minibatch=10)
    weights, (inline, ray), executor = await _inline_and_with_a_death(train, modern)
    assert executor.traffic.restarts == 1
    assert inline.steps.tolist() == ray.steps.tolist() == [TRAIN_LINES // 10]
    assert np.array_equal(weights[0], weights[1])
    for name, array in inline.arrays.items():
        assert np.abs(array).max() > 0
        assert np.array_equal(ray.arrays[name], array), name


@pytest.mark.asyncio
async def test_an_actor_that_keeps_dying_ends_the_pass_with_one_clear_error(mnist_small):
    class KillsEveryStep(RayExecutor):
        async def _submit(self, worker, request):
            reply = self.graph(worker).execute(by_value(request))
            if request[0] != "echo":
                ray.kill(self.actor(worker))
            return await anyio.to_thread.run_sync(self._get, reply)

    train, _ = mnist_small
    executor = KillsEveryStep(1, retries=1)
    try:
        with Arena() as arena:
            data = share_data(arena, "train", train, np.arange(TRAIN_LINES))
            plan = SharedNetwork(arena, 1).plan("train", data)
            with pytest.raises(RayWorkerLost, match="worker 0 died 2 times on lines 1–100"):
                await run_pass(plan, executor)
    finally:
        executor.close()


class MeasuresEachMessage(RayExecutor):
    """Records, for every step, the bytes Ray writes into the graph's channels and the channels' size."""

    def __init__(self, workers: int, **options) -> None:
        super().__init__(workers, **options)
        self.messages = []
        self.views = 0

    async def _submit(self, worker, request):
        reply = await super()._submit(worker, request)
        self.views += _views_of_rays_memory(reply)
        context = ray._private.worker.global_worker.get_serialization_context()
        for value in (request, reply):
            serialized = context.serialize(by_value(value))  # what a channel's write sizes (and grows for)
            self.messages.append(
                (serialized.total_bytes + len(serialized.metadata), self._graph_bytes[worker])
            )
        return reply


@pytest.mark.asyncio
async def test_every_step_fits_its_graphs_channels_and_a_larger_pass_compiles_larger_ones(mnist_small):
    # A channel that grows between nodes can lose the message it grew for (Ray 2.60): none may grow.
    train, _ = mnist_small
    modern = Modern(learning_rate=0.001, optimizer="adam", minibatch=20)
    executor = MeasuresEachMessage(1)
    try:
        with Arena() as arena:
            data = share_data(arena, "train", train, np.arange(TRAIN_LINES))
            network = SharedNetwork(arena, 1)
            await run_pass(network.plan("train", data), executor)
            thesis = executor._graph_bytes[0]
            plan, _ = _with_optimizer(arena, network.plan("train", data), modern)
            await executor.everywhere(warm_up_modern)
            await run_pass(plan, executor)
    finally:
        executor.close()
    assert len(executor.messages) == 2 * 2 * TRAIN_LINES // 100  # a request and a reply per step
    assert all(size <= channel for size, channel in executor.messages)
    # Adam's two state arrays travel with each modern step: three times the weights, beyond Ray's 1 MB.
    largest = max(size for size, _ in executor.messages)
    assert largest > 3 * LAYOUT.n_weights * 8 > 10**6
    assert executor.messages[-1][1] > thesis
    # No reply holds a view of a channel's memory (one alive stalls the next step from another node).
    assert executor.views == 0


def _views_of_rays_memory(value) -> int:
    """How many arrays in ``value`` view memory that is neither their own nor a ``bytes`` read."""
    if isinstance(value, np.ndarray):
        while isinstance(value.base, np.ndarray):
            value = value.base
        return 0 if value.base is None or isinstance(value.base, bytes) else 1
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, tuple | list):
        return sum(_views_of_rays_memory(item) for item in value)
    return 0


def test_more_workers_than_the_clusters_cpus_is_a_user_error():
    with pytest.raises(UserError, match="has 2 CPUs, Parallel 3 needs one per worker"):
        RayExecutor(3)


def test_asking_for_ray_without_ray_installed_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(UserError, match=r"pip install '\.\[ray\]'"):
        make_executor(ExecutorName.RAY, 1)


@pytest.mark.parametrize(
    ("text", "address"),
    [("local", "local"), ("Auto", "auto"), ("10.0.0.1:6379", "10.0.0.1:6379"), ("head:6379", "head:6379")],
)
def test_ray_address_is_local_auto_or_host_and_port(text, address):
    (directive,) = (d for d in DIRECTIVES if d.key == "RayAddress")
    assert directive.value.parse(text) == address


@pytest.mark.parametrize("text", ["", "head", "head:", ":6379", "head:0", "head:65536", "head:port"])
def test_ray_address_rejects_anything_else(text):
    (directive,) = (d for d in DIRECTIVES if d.key == "RayAddress")
    with pytest.raises(ValueError, match="is not local, auto or host:port"):
        directive.value.parse(text)
