"""What lives across the passes of a run, and the plan of each pass built from it.

A run keeps, from one pass to the next: the executor (while Executor, Parallel,
RayAddress and PinProcesses stay the same), the shared-memory arena, the data sets
already in it, the weight arrays of each network shape (main, replicas, the
snapshot steps start from) and each replica's optimizer state.  A pass asks the
workspace for its ``PassPlan``; what a pass does with it is the coordinator's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from actors.batchfile.parse import Pass
from actors.batchfile.preflight import DataKey
from actors.batchfile.settings import Settings
from actors.coordinator import PassPlan
from actors.executors.arena import Arena, ArraySpec
from actors.executors.executor import Executor, make_executor
from actors.executors.step import Workload, warm_up_modern
from actors.interrupt import Interrupt
from actors.networks import error_history
from actors.setup_time import Laps
from actors.vocabulary import Rounds
from brain.data import Dataset, Targets, interpret_targets, load_dataset
from brain.errors import DataError
from brain.hyper import Hyper
from brain.layout import Layout
from brain.modern import replica_state, state_to_save
from brain.persistence import Persisted
from brain.step import Math


@dataclass(frozen=True)
class SharedData:
    """A data set in the arena."""

    lines: int
    inputs: ArraySpec
    labels: ArraySpec
    direct: ArraySpec
    order: ArraySpec
    order_array: np.ndarray


def share_dataset(arena: Arena, name: str, dataset: Dataset, targets: Targets) -> SharedData:
    """Put a data set, its interpreted targets and an order (0, 1, …, to be filled) in the arena."""
    _, inputs = arena.share(f"{name}-inputs", dataset.inputs)
    _, labels = arena.share(f"{name}-labels", targets.labels)
    _, direct = arena.share(f"{name}-direct", targets.direct)
    order, order_spec = arena.share(f"{name}-order", np.arange(len(dataset), dtype=np.int64))
    return SharedData(len(dataset), inputs, labels, direct, order_spec, order)


@dataclass(frozen=True)
class Shared:
    """An array in the arena, and the spec other processes map it by."""

    array: np.ndarray
    spec: ArraySpec


@dataclass(frozen=True)
class WeightArrays:
    """The arrays of one network shape and Parallel: main, the replicas, and where steps start."""

    main: Shared
    replicas: Shared
    snapshot: Shared  # Sync rounds: the round's snapshot of main
    starts: Shared  # Async rounds: each worker's start

    def state(self, rounds: Rounds) -> Shared:
        """Where a training step's replica starts (and a lost slice restarts) under ``rounds``."""
        return self.starts if rounds is Rounds.ASYNC else self.snapshot


@dataclass(frozen=True)
class OptimizerArrays:
    """Each replica's optimizer state in the arena (a row per worker), for one optimizer and shape."""

    key: tuple
    stacks: dict[str, Shared]
    steps: Shared


@dataclass(frozen=True)
class Prepared:
    """A pass ready to run: its plan, where its steps run, and what it was built from."""

    plan: PassPlan
    executor: Executor
    data: SharedData
    learning_rate: float


class Workspace:
    """The executor, the arena and the arrays in it, kept from pass to pass; ``close`` frees them."""

    def __init__(self, on_event: Callable[..., Any]) -> None:
        self.on_event = on_event
        self.arena = Arena()
        self.executor: Executor | None = None
        self._executor_key: tuple | None = None
        self._datasets: dict[tuple, SharedData] = {}
        self._weights: dict[tuple[int, int], WeightArrays] = {}
        self._optimizer: OptimizerArrays | None = None
        self._optimizer_count = 0
        self._optimizer_lineage = -1
        self._modern_ready: set[Executor] = set()
        self.loaded: dict[DataKey, Dataset] = {}  # data sets the pre-flight read, until shared

    def close(self) -> None:
        if self.executor is not None:
            self.executor.close()
            self.executor = None
        self.arena.close()

    async def prepare(
        self, batch_pass: Pass, layout: Layout, network: Persisted, lineage: int, interrupt: Interrupt,
        setup: Laps,
    ) -> Prepared:  # fmt: skip
        """The plan of ``batch_pass`` starting from ``network`` (of ``lineage``, see ``Networks``).

        ``setup`` times the parts: ``pool`` (the executor made, or its processes waited
        for), ``data`` (the data set put in the arena), ``shared_memory`` (the weight
        arrays), ``optimizer`` (modern: its state and kernels), ``prepare`` (the rest,
        e.g. Ray shipping the data).

        Raises ``DataError`` if the data do not fit the network's input layer, and
        whatever starting the executor raises (``UserError`` for a missing Ray).
        """
        settings = batch_pass.settings
        training = batch_pass.mode == "train"
        executor = self._executor_for(settings)
        setup.lap("pool")
        data = self._data_for(batch_pass, layout)
        epoch = network.epoch + 1 if training else network.epoch
        if training:
            _fill_order(data.order_array, settings, epoch)
        setup.lap("data")
        weights = self._weights_for(layout, settings.parallel)
        state = weights.state(settings.rounds)
        setup.lap("shared_memory")
        history = error_history(network)
        learning_rate = settings.learning_rate_schedule().rate(settings.learning_rate, epoch - 1, history)
        hyper = Hyper(learning_rate, settings.lambda_, settings.preprocessing, settings.elu_alpha)
        modern = replace(settings.modern_hyper(), learning_rate=learning_rate) if settings.is_modern else None
        optimizer = await self._optimizer_for(settings, layout, network, lineage, executor) if modern else {}
        setup.lap("optimizer")
        work = Workload(
            batch_pass.mode, data.inputs, data.labels, data.direct, data.order, weights.main.spec,
            weights.replicas.spec, Math(layout, modern or hyper), state=state.spec, **optimizer,
        )  # fmt: skip
        plan = PassPlan(
            batch_pass.mode, data.lines, settings.parallel, settings.worker_batch,
            settings.effective_data_capacity, settings.effective_output_capacity, work, weights.main.array,
            weights.replicas.array, label=f"epoch {epoch}" if training else "the test pass",
            state=state.array, start_line=network.epoch_lines_done if training else 0, interrupt=interrupt,
            merge=settings.merge, rounds=settings.rounds, start_weights=network.weights,
        )  # fmt: skip
        await executor.prepare(work)  # e.g. Ray ships the data set: part of the setup, not of the pass
        setup.lap("prepare")
        return Prepared(plan, executor, data, learning_rate)

    def optimizer_to_save(self) -> dict[str, np.ndarray]:
        """The optimizer state a training pass persists beside the weights (none: thesis semantics)."""
        if self._optimizer is None:
            return {}
        stacks = {name: shared.array for name, shared in self._optimizer.stacks.items()}
        return state_to_save(stacks, self._optimizer.steps.array)

    async def _optimizer_for(
        self, settings: Settings, layout: Layout, network: Persisted, lineage: int, executor: Executor
    ) -> dict:
        """Each replica's optimizer state in shared memory, from the network's saved state if any."""
        if executor not in self._modern_ready:
            await executor.everywhere(warm_up_modern)
            self._modern_ready.add(executor)
        # Arrays are made once per shape (what actors.batchfile.memory counts); a pass that starts from
        # another network than the one in memory (a new lineage) refills them from its saved state.
        key = (settings.optimizer, settings.parallel, layout.n_weights, settings.network_file)
        fresh = self._optimizer is None or self._optimizer.key != key
        if fresh or self._optimizer_lineage != lineage:
            stacks, steps = replica_state(
                settings.optimizer, settings.parallel, layout.n_weights, network.extra
            )
            if fresh:
                name = f"optimizer{self._optimizer_count}"
                self._optimizer_count += 1
                shared = {
                    key_: Shared(*self.arena.share(f"{name}-{key_}", stack)) for key_, stack in stacks.items()
                }
                self._optimizer = OptimizerArrays(
                    key, shared, Shared(*self.arena.share(f"{name}-steps", steps))
                )
            else:
                for name, shared_stack in self._optimizer.stacks.items():
                    shared_stack.array[:] = stacks[name]
                self._optimizer.steps.array[:] = steps
            self._optimizer_lineage = lineage
        return {
            "optimizer_state": tuple((name, shared.spec) for name, shared in self._optimizer.stacks.items()),
            "optimizer_steps": self._optimizer.steps.spec,
        }

    def _executor_for(self, settings: Settings) -> Executor:
        key = (
            settings.executor, settings.parallel, settings.ray_address, settings.ray_placement,
            settings.pin_processes, settings.batch_scheduling,
        )  # fmt: skip
        if key != self._executor_key:
            if self.executor is not None:
                self.executor.close()
                self.executor = None
            self.executor = make_executor(
                settings.executor, settings.parallel, on_event=self.on_event,
                ray_address=settings.ray_address, pin=settings.pin_processes,
                batch_scheduling=settings.batch_scheduling, ray_placement=settings.ray_placement,
            )  # fmt: skip
            self._executor_key = key
        return self.executor

    def _data_for(self, batch_pass: Pass, layout: Layout) -> SharedData:
        settings = batch_pass.settings
        training = batch_pass.mode == "train"
        path: Path = settings.train_file if training else settings.test_file
        labels = settings.train_labels if training else settings.test_labels
        start, end = settings.target_start, settings.target_end
        key = (str(path), str(labels), start, end, layout.n_outputs)
        if key not in self._datasets:
            dataset = self.loaded.pop((path, labels, start, end), None)
            if dataset is None:
                dataset = load_dataset(path, labels_path=labels, target_start=start, target_end=end)
            if dataset.inputs.shape[1] != layout.n_inputs:
                raise DataError(
                    f"the data have {dataset.inputs.shape[1]} inputs per line, the network's input "
                    f"layer has {layout.n_inputs} neurons",
                    where=path, allowed=f"{layout.n_inputs} input columns",
                )  # fmt: skip
            targets = interpret_targets(dataset, layout.n_outputs)
            self._datasets[key] = share_dataset(self.arena, f"data{len(self._datasets)}", dataset, targets)
        return self._datasets[key]

    def _weights_for(self, layout: Layout, parallel: int) -> WeightArrays:
        key = (layout.n_weights, parallel)
        if key not in self._weights:
            name = f"weights{len(self._weights)}"
            one, per_worker = (layout.n_weights,), (parallel, layout.n_weights)
            self._weights[key] = WeightArrays(
                main=Shared(*self.arena.array(f"{name}-main", one, np.float64)),
                replicas=Shared(*self.arena.array(f"{name}-replicas", per_worker, np.float64)),
                snapshot=Shared(*self.arena.array(f"{name}-state", one, np.float64)),
                starts=Shared(*self.arena.array(f"{name}-starts", per_worker, np.float64)),
            )
        return self._weights[key]


def shuffled_order(lines: int, seed: int, epoch: int) -> np.ndarray:
    """The order of epoch ``epoch``: a permutation seeded by (seed, epoch), reproducible."""
    return np.random.default_rng([seed, epoch]).permutation(lines)


def _fill_order(order: np.ndarray, settings: Settings, epoch: int) -> None:
    if settings.shuffle:
        order[:] = shuffled_order(len(order), settings.seed, epoch)
    else:
        order[:] = np.arange(len(order))
