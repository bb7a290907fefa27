"""The ray executor: each worker actor's numeric step runs in a Ray actor, here or on a cluster.

The asyncio actors, channels and coordinator are those of the other executors; only
the place of the step changes.  Worker ``w`` has one Ray actor (a ``StepActor``)
that holds the data sets and buffers for its replica, and one Ray *compiled graph*
whose only node is that actor's ``step``: a step is one ``execute`` of the graph,
which moves its request and reply through channels Ray set up once (shared memory
on one machine) instead of scheduling a task — tens of microseconds, not the
milliseconds of an actor call on this machine.  What travels:

* a data set (inputs, labels, direct targets) goes into the object store once, the
  first time a pass uses it, and its references go to each Ray actor once;
* each step sends the weights it starts from (the round's snapshot of main; main
  in a test pass), its slice's rows of the epoch's order (WorkerBatch integers)
  and the math (``brain.step.Math``), and gets back the trained replica, which is
  written into ``replicas[w]`` of the arena, so that the coordinator merges it as
  it merges the pool's.  Sending the snapshot with each step measured faster here
  than putting it into the object store once a round and passing the reference
  (see the README);
* modern semantics: the replica's optimizer state travels with it — its rows of
  the arena go with each training step and come back trained, written where they
  came from.  The arena stays the only home of the state, as with the process
  executor: it is persisted from there, and a Ray actor keeps nothing between steps.

The Ray actor runs ``brain.step.step``, the function every executor runs, on the
same rows in the same order: with Parallel 1 the weights (and the optimizer state)
equal the process executor's bit for bit.

The actors are placed on the cluster's nodes by ``actors.executors.ray_placement``
(``RayPlacement``: spread or pack), which also measures the data's copies: a data
set goes to each node once, however many actors run there.

A Ray actor that dies (killed, out of memory, its machine gone) is replaced, given
the data again, its graph compiled again, and its slice re-run from the same
weights, at most ``retries`` times; then the step fails with ``RayWorkerLost``.
The re-run also starts from the same optimizer state: the dead actor's reply never
came, so the arena's rows were not touched, and the same request goes again.  For
the same reason a step cancelled mid-way leaves replica and state as they were.
When the actor died with its node, the replacement goes to a surviving node with a
free CPU (Ray moves the node's bundles there); when the nodes left have fewer CPUs
than there are workers, the step fails at once with ``RayWorkerLost``.  Either
failure halts the pass after its last whole round (``PassHalted``), so that the
runner saves a checkpoint from there.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import anyio
import numpy as np

from actors.exceptions import PassHalted, single_error
from actors.executors.arena import ArraySpec, attach
from actors.executors.ray_placement import Placement
from actors.executors.ray_session import connect
from actors.executors.step import Workload, optimizer_of, start_of
from actors.messages import StepResult
from actors.vocabulary import RayPlacement
from brain.data.targets import Targets
from brain.errors import UserError
from brain.step import Optimizer, step

log = logging.getLogger(__name__)

# Seconds a step may take, sent and answered, before its actor is taken for lost (and replaced):
# Ray's default for compiled graphs, 10 s, is reached on a loaded machine by steps that are alive.
STEP_SECONDS = 600.0
# Room in a graph's channel beyond a step's arrays: the pickled tuple around them, the math, the outcome.
CHANNEL_SLACK_BYTES = 64 * 1024
NODE_CHECK_SECONDS = 1.0  # how often a replacement that has not started checks the cluster's CPUs


class RayWorkerLost(PassHalted):
    """A worker's Ray actor died more often than the executor retries a slice, or no node can take it."""


def import_ray() -> Any:
    """The ``ray`` module, or one ``UserError`` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise _not_installed() from None
    return ray


def refusal() -> UserError | None:
    """Why this executor cannot run a pass, found without starting Ray: Ray is not installed.

    None when it can (any semantics).
    """
    if importlib.util.find_spec("ray") is None:
        return _not_installed()
    return None


def _not_installed() -> UserError:
    return UserError(
        "Executor: ray needs Ray, which is not installed",
        allowed="pip install '.[ray]' (in the project's folder), or Executor: process",
    )


@dataclass
class Traffic:
    """Bytes the executor moved through Ray, by kind (the data sets are counted apart)."""

    data_bytes: int = 0  # data sets put into the object store (once each)
    data_moved_bytes: int = 0  # copies of them fetched by other nodes (once per node)
    main_bytes: int = 0  # the weights each step starts from, sent with it
    rows_bytes: int = 0  # slices' rows sent with the steps
    replica_bytes: int = 0  # trained replicas received
    optimizer_bytes: int = 0  # modern semantics: optimizer state sent with the steps and received
    between_nodes_bytes: int = 0  # the part of the four above that went to or came from another node
    steps: int = 0
    restarts: int = 0

    @property
    def round_bytes(self) -> int:
        """Everything but the data sets: what the rounds cost."""
        return self.main_bytes + self.rows_bytes + self.replica_bytes + self.optimizer_bytes

    def since(self, before: Traffic) -> Traffic:
        """What was moved after ``before`` (an earlier copy of this tally)."""
        return Traffic(**{key: value - getattr(before, key) for key, value in asdict(self).items()})


class StepActor:
    """One worker's side in Ray: the data sets it was given and buffers for its replica.

    Made a Ray actor by ``RayExecutor`` (``ray.remote(StepActor)``), so that this
    module imports without Ray.  It keeps no state between steps but those buffers:
    what a step starts from comes with it.
    """

    def __init__(self) -> None:
        self._data: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._buffers: dict[str, np.ndarray] = {}

    def ready(self) -> tuple[str, int, str]:
        """Answers once the actor runs and has loaded the kernels (so that no pass times it): where it is.

        Its machine (``machine()``) and process id, so that the driver can read the
        actor's context switches when it runs on the driver's machine, and its Ray node.
        """
        import ray

        from actors.executors.step import warm_up

        warm_up()
        return machine(), os.getpid(), ray.get_runtime_context().get_node_id()

    def call(self, function: Callable[[], object]) -> None:
        """Run ``function`` here (``RayExecutor.everywhere``)."""
        function()

    def hold(self, key: tuple[str, ...], inputs: np.ndarray, labels: np.ndarray, direct: np.ndarray) -> None:
        """Keep a data set (read-only views of the object store, not copies)."""
        self._data[key] = (inputs, labels, direct)

    def step(self, request: tuple) -> Any:
        """The compiled graph's node: ``(mode, key, weights, rows, math, optimizer)`` → the step's reply.

        ``mode`` is ``train`` or ``test``; ``weights`` what the step starts from;
        ``optimizer`` the replica's ``brain.step.Optimizer`` (modern training) or
        None.  A training step answers ``(outcome, seconds, replica, optimizer)``,
        the last two trained; a test step ``(outcome, seconds)``.
        ``("echo", payload)`` sends the payload back: a warm-up that compiles
        the graph before a pass is timed.  Request and reply travel ``by_value``.
        """
        return by_value(self._step(*request))

    def _step(self, mode: str, *args: Any) -> Any:
        if mode == "echo":
            return args[0]
        key, weights, rows, math, optimizer = args
        began = time.perf_counter()
        inputs, labels, direct = self._data[key]
        training = mode == "train"
        # The arrays read are read-only: the step computes on this actor's own buffers.
        replica = self._buffer("weights", weights)
        if optimizer is not None:
            arrays = {name: self._buffer(name, array) for name, array in optimizer.arrays.items()}
            optimizer = Optimizer(arrays, self._buffer("steps", optimizer.steps))
        outcome = step(
            replica, inputs, Targets(labels, direct), rows, math, training=training, optimizer=optimizer
        )
        seconds = time.perf_counter() - began
        return (outcome, seconds, replica, optimizer) if training else (outcome, seconds)

    def _buffer(self, name: str, values: np.ndarray) -> np.ndarray:
        """This actor's writable buffer ``name``, set to ``values``."""
        buffer = self._buffers.get(name)
        if buffer is None or buffer.shape != values.shape or buffer.dtype != values.dtype:
            buffer = self._buffers[name] = np.empty_like(values)
        np.copyto(buffer, values)
        return buffer


class RayExecutor:
    """Runs each worker's steps in its own Ray actor; see the module's docstring.

    ``address`` is ``local`` (start a private Ray instance with ``workers`` CPUs,
    stopped by ``close`` and cleaned up after even if this process is killed: see
    ``actors.executors.ray_session``), ``auto`` (the cluster that ``ray start`` runs on this
    machine) or ``host:port`` of a cluster's head (``close`` disconnects).  If this
    process is already connected to Ray, that connection is used and left open.
    ``placement`` spreads the actors over the cluster's nodes or packs them (see
    ``actors.executors.ray_placement``).  Start-up waits until every Ray actor answers,
    so that it is not counted in the first round.  ``on_event(name, **fields)`` hears
    where the actors run (``ray_placement``), of every lost actor (``ray_actor_lost``)
    and node (``ray_node_lost``), and after each pass what it moved (``ray_traffic``).
    """

    name = "ray"
    actor_class: type = StepActor  # what each worker's Ray actor is

    def __init__(
        self,
        workers: int,
        address: str = "local",
        *,
        placement: RayPlacement = RayPlacement.SPREAD,
        on_event: Callable[..., Any] | None = None,
        retries: int = 3,
        start_timeout: float = 120.0,
    ) -> None:
        self.workers = workers
        self.address = address
        self.on_event = on_event or _ignore
        self.retries = retries
        self.start_timeout = start_timeout
        self.traffic = Traffic()
        self._reported = Traffic()  # the tally when the last pass ended
        self._ray = import_ray()
        logging.getLogger("ray.dag.compiled_dag_node").addFilter(_QUIET_ABOUT_DEAD_ACTORS)
        self._connection = connect(self._ray, address, workers)
        self._actor_class = self._ray.remote(self.actor_class)
        self._actors: dict[int, Any] = {}
        self._holding: dict[int, set[tuple[str, ...]]] = {}
        self._data: dict[tuple[str, ...], tuple] = {}
        self._graphs: dict[int, Any] = {}
        self._graph_bytes: dict[int, int] = {}  # each graph's channel size
        self._message_bytes = 0  # the largest step message of the passes so far (``message_bytes``)
        self._sized_for: Workload | None = None  # the pass whose messages were counted last
        self._where: dict[int, tuple[str, int]] = {}  # each worker's actor: its machine and process id
        self._everywhere: list[Callable[[], object]] = []  # run again in a replacement actor
        self._threads = anyio.CapacityLimiter(workers)  # one blocking get per worker at a time
        self.placement: Placement | None = None
        try:
            self.placement = Placement(self._ray, workers, placement, start_timeout)
            for worker in range(workers):
                self._start_actor(worker)
            ready = [self._actors[worker].ready.remote() for worker in range(workers)]
            for worker, (where, pid, node) in enumerate(self._ray.get(ready, timeout=start_timeout)):
                self._where[worker] = (where, pid)
                self.placement.nodes[worker] = node
            if self._connection is not None:
                self._connection.remember()  # now with the actors' processes
            self.on_event("ray_placement", **self.placement.describe())
        except self._ray.exceptions.GetTimeoutError:
            self.close()
            raise UserError(
                f"Ray did not start {workers} actors within {start_timeout:.0f} s",
                allowed=f"a Ray cluster with {workers} free CPUs and the project installed on every machine",
            ) from None
        except BaseException:
            self.close()
            raise

    async def everywhere(self, function: Callable[[], object]) -> None:
        """Run ``function`` in every Ray actor (all at once), e.g. to load kernels before timing.

        A replacement actor runs it too, before its first step.
        """
        self._everywhere.append(function)
        async with anyio.create_task_group() as group:
            for actor in self._actors.values():
                group.start_soon(_awaited, actor.call.remote(function))

    async def prepare(self, work: Workload) -> None:
        """Put ``work``'s data set into the object store and give every actor its references.

        Done once per data set, before a pass is timed (a step would otherwise do
        it); then one echo through each graph of what a step of the pass sends (the
        weights, and a training step's optimizer state), which compiles the graph
        with channels that hold the pass' steps (``graph``; the actors loaded the
        kernels when they started) — about a second that no pass should count.  An
        actor lost meanwhile is replaced as in a step; ``RayWorkerLost`` if it cannot be.
        """
        key = self._ship_data(work)
        weights = attach(work.main)
        training = work.mode == "train"
        self._size_for(work)
        with single_error():
            async with anyio.create_task_group() as group:
                for worker in self._actors:
                    echo = ("echo", (weights, optimizer_of(work, worker) if training else None))
                    group.start_soon(self._step, worker, key, echo, None)

    async def run(self, work: Workload, worker: int, start: int, stop: int) -> StepResult:
        """Train ``replicas[worker]`` on lines ``[start, stop)`` of the order in its Ray actor, or test main.

        The step starts from the weights it would start from in the pool
        (``start_of``: the round's snapshot, or main to test) and, modern, from the
        replica's optimizer state in the arena, both sent with it; the trained
        replica and state are written back.  On cancellation the Ray actor finishes
        its step and the result is dropped, replica and state untouched.  A dead Ray
        actor is replaced and the slice re-run from the same weights and state; after
        ``retries`` replacements the step raises ``RayWorkerLost``.
        """
        training = work.mode == "train"
        if training:
            weights = start_of(work, worker)
            if weights is None:
                weights = attach(work.replicas)[worker]
        else:
            weights = attach(work.main)
        optimizer = optimizer_of(work, worker) if training else None
        rows = np.array(attach(work.order)[start:stop])  # a copy: the order is refilled every epoch
        key = self._ship_data(work)
        self._size_for(work)  # once per pass: a pass that was not prepared is sized at its first step
        request = (work.mode, key, weights, rows, work.math, optimizer)
        reply = await self._step(worker, key, request, (start, stop))
        before = self.traffic.round_bytes
        self.traffic.steps += 1
        self.traffic.rows_bytes += rows.nbytes
        self.traffic.main_bytes += weights.nbytes
        if training:
            outcome, seconds, replica, trained = reply
            attach(work.replicas)[worker] = replica
            self.traffic.replica_bytes += replica.nbytes
            if optimizer is not None:
                for name, array in optimizer.arrays.items():
                    array[:] = trained.arrays[name]
                optimizer.steps[:] = trained.steps
                self.traffic.optimizer_bytes += 2 * optimizer.nbytes
        else:
            outcome, seconds = reply
        if self.placement.between_nodes(worker):
            self.traffic.between_nodes_bytes += self.traffic.round_bytes - before
        return StepResult(*outcome, seconds)

    async def _step(
        self, worker: int, key: tuple[str, ...], request: tuple, lines: tuple[int, int] | None
    ) -> Any:
        """The Ray actor's reply to one step (or ``prepare``'s echo: no ``lines``), from a
        replacement actor if the worker's dies."""
        lost = (self._ray.exceptions.RayActorError, self._ray.exceptions.RayChannelError)
        for attempt in range(1, self.retries + 2):
            try:
                await self._hold(worker, key)
                return await self._submit(worker, request)
            except lost as error:
                if attempt > self.retries:
                    where = f"on lines {lines[0] + 1}–{lines[1]} of the pass" if lines else "before the pass"
                    raise RayWorkerLost(
                        f"the Ray actor of worker {worker} died {attempt} times {where} "
                        f"(last: {type(error).__name__})",
                        allowed="machines that stay up and have memory, or Executor: process",
                    ) from error
                log.warning("Ray actor of worker %d died (%s); replacing it", worker, type(error).__name__)
                node = self.placement.nodes[worker]
                self._note_node(node, worker)
                if (cpus := self.placement.cpus()) < self.workers:
                    raise self._no_node_left(node, worker, cpus) from error
                await self._replace_actor(worker, node)
                self._note_node(node, worker)  # a node whose death Ray had not seen before the replacement
                start, stop = lines or (None, None)
                self.on_event(
                    "ray_actor_lost", error=type(error).__name__, worker=worker, start=start, stop=stop,
                    restarts=self.traffic.restarts, node=node, now_on=self.placement.nodes[worker],
                )  # fmt: skip

    def _no_node_left(self, node: str, worker: int, cpus: float) -> RayWorkerLost:
        what = f"the Ray actor of worker {worker} died"
        if (lost := self.placement.lost.get(node)) is not None:
            what = f"the Ray node {lost['address']} ({node[:12]}) was lost with {_workers(lost['workers'])}"
        return RayWorkerLost(
            f"{what}, and no node can take their place: the cluster has {cpus:g} CPU(s) left, "
            f"Parallel {self.workers} needs one per worker",
            allowed=f"another machine in the cluster (ray start --address=…), or Parallel ≤ {cpus:g}",
        )

    def _note_node(self, node: str, worker: int) -> None:
        """Log ``ray_node_lost`` if ``node``, where ``worker``'s actor ran, has died (once a node)."""
        lost = self.placement.newly_lost(node, worker)
        if lost is not None:
            log.warning("Ray node %s (%s) died", lost["address"], node)
            self.on_event("ray_node_lost", **lost)

    async def _submit(self, worker: int, request: tuple) -> Any:
        """Run one step through the worker's compiled graph and await its reply (tests wrap this).

        The graph is driven from a worker thread with Ray's blocking calls: its asyncio
        interface (Ray 2.60) mishandles an actor's death — the reply then comes back
        as an error object it cannot unpack, or never.  The blocking ``get`` raises
        ``RayActorError`` for a dead actor, as an ordinary call does.
        """
        reply = self.graph(worker).execute(by_value(request))
        return await anyio.to_thread.run_sync(self._get, reply, limiter=self._threads)

    def _size_for(self, work: Workload) -> None:
        """Count ``work``'s largest message into the graphs' channel size (``graph``), once per pass."""
        if work is not self._sized_for:
            self._sized_for = work
            self._message_bytes = max(self._message_bytes, message_bytes(work))

    def _get(self, reply: Any) -> Any:
        return self._ray.get(reply, timeout=STEP_SECONDS)

    def graph(self, worker: int) -> Any:
        """The worker's compiled graph, with channels that hold the largest step of the passes so far.

        Compiled on first use, again for a replacement actor, and again when a pass
        sends more than its channels hold (``prepare`` does it, before the pass is
        timed).  Ray would instead grow a channel inside a timed step whenever a
        message did not fit its 1 MB (every modern step with Adam: the weights and two
        state arrays) — a new channel, announced to its readers (between nodes, by a
        call to the reading actor) and the old one left behind.
        """
        graph = self._graphs.get(worker)
        if graph is not None and self._graph_bytes[worker] < self._message_bytes:
            self._teardown(worker)
            graph = None
        if graph is None:
            from ray.dag import InputNode

            with InputNode() as request:
                node = self._actors[worker].step.bind(request)
            size = max(self._message_bytes, RAY_CHANNEL_BYTES)
            graph = self._graphs[worker] = node.experimental_compile(
                _submit_timeout=STEP_SECONDS, _buffer_size_bytes=size
            )
            self._graph_bytes[worker] = size
        return graph

    def _teardown(self, worker: int) -> None:
        self._graph_bytes.pop(worker, None)
        graph = self._graphs.pop(worker, None)
        if graph is not None:
            _quietly(graph.teardown)

    def end_pass(self) -> None:
        """Log what the pass moved (``ray_traffic``): since the last pass ended, so with its preparation."""
        moved = self.traffic.since(self._reported)
        self._reported = replace(self.traffic)
        self.on_event(
            "ray_traffic", steps=moved.steps, data_bytes=moved.data_bytes,
            data_moved_bytes=moved.data_moved_bytes, step_bytes=moved.round_bytes,
            between_nodes_bytes=moved.between_nodes_bytes, restarts=moved.restarts,
        )  # fmt: skip

    def close(self) -> None:
        """Tear the graphs down, stop the Ray actors, free their CPUs, drop the objects put, stop Ray
        if started here.

        Idempotent; never raises.
        """
        for worker in list(self._graphs):
            self._teardown(worker)
        for actor in self._actors.values():
            _quietly(self._ray.kill, actor)
        if self.placement is not None:
            self.placement.close()
        self._actors.clear()
        self._holding.clear()
        self._data.clear()
        if self._connection is not None:
            connection, self._connection = self._connection, None
            connection.close()

    def process_ids(self) -> dict[str, int]:
        """The Ray actors on this machine by name, ``ray actor 0``, … (whose context switches count)."""
        here = machine()
        return {f"ray actor {w}": pid for w, (where, pid) in sorted(self._where.items()) if where == here}

    def actor(self, worker: int) -> Any:
        """The Ray actor handle of ``worker`` (for tests and diagnostics)."""
        return self._actors[worker]

    def _ship_data(self, work: Workload) -> tuple[str, ...]:
        """The data set's key; its arrays are put into the object store the first time."""
        specs = (work.inputs, work.labels, work.direct)
        key = tuple(spec.path for spec in specs)
        if key not in self._data:
            arrays = [attach(spec) for spec in specs]
            self._data[key] = tuple(self._ray.put(array) for array in arrays)
            self.traffic.data_bytes += sum(array.nbytes for array in arrays)
        return key

    async def _hold(self, worker: int, key: tuple[str, ...]) -> None:
        """Send the worker's actor the data set's references if it has not got them yet, and
        count the copy its node may have fetched for it.

        Awaited: the compiled graph's steps run beside the actor's ordinary calls,
        not after them.
        """
        if key not in self._holding[worker]:
            await self._actors[worker].hold.remote(key, *self._data[key])
            self._holding[worker].add(key)
            holders = {self.placement.nodes[w] for w, keys in self._holding.items() if key in keys}
            self.traffic.data_moved_bytes += await self.placement.count_copies(self._data[key], holders)

    def _start_actor(self, worker: int) -> None:
        self._actors[worker] = self._actor_class.options(**self.placement.options(worker)).remote()
        self._holding[worker] = set()

    async def _replace_actor(self, worker: int, node: str) -> None:
        """A fresh actor for ``worker``, whose actor ran on ``node``.

        Raises ``RayWorkerLost`` if it does not start in time, or as soon as the nodes
        alive have fewer CPUs than there are workers (``node`` may die while Ray places
        the replacement there).
        """
        self._teardown(worker)
        _quietly(self._ray.kill, self._actors[worker])
        self._start_actor(worker)
        self.traffic.restarts += 1
        ready = self._actors[worker].ready.remote()
        try:
            with anyio.fail_after(self.start_timeout):
                while (started := await _within(ready, NODE_CHECK_SECONDS)) is None:
                    self._note_node(node, worker)
                    if (cpus := self.placement.cpus()) < self.workers:
                        raise self._no_node_left(node, worker, cpus)
                where, pid, self.placement.nodes[worker] = started
                self._where[worker] = (where, pid)
                for function in self._everywhere:
                    await self._actors[worker].call.remote(function)
        except TimeoutError:
            raise RayWorkerLost(
                f"the Ray actor of worker {worker} died and no replacement started within "
                f"{self.start_timeout:.0f} s",
                allowed="a cluster with a free CPU for every worker, or Executor: process",
            ) from None


def by_value(value: Any) -> Any:
    """``value`` with every numpy array in it (in tuples, named tuples, dicts) sent by value.

    What crosses a compiled graph's channel, both ways.  Ray would send an array out
    of band and read it without copying it: a view of the channel's shared memory,
    into which the next message can be written only when every such view is gone.
    A view can outlive its step unseen -- the last job of an idle worker thread keeps
    its result; a kernel compiled in the step can leave a reference cycle holding
    the step's frames until the next collection -- and then the next message between
    nodes waits forever (on one machine it did not, in our tests).  Pickled in band
    as its bytes, an array is read as a copy (on the bytes read), and the channel is
    free again once the message is read.
    """
    return _mapped(value, np.ndarray, _ByValue)


class _ByValue:
    """An array that pickles as its bytes, in band (``by_value``); unpickled, it is an array again.

    Not a tuple of bytes: Ray packs tuples and bytes with msgpack, which took ten times
    as long for a step's weights (0.8 ms against 0.08 ms by pickle, here).
    """

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def __reduce__(self) -> tuple[Callable[..., np.ndarray], tuple[str, tuple[int, ...], bytes]]:
        return _array_of, (self.array.dtype.str, self.array.shape, self.array.tobytes())


def _array_of(dtype: str, shape: tuple[int, ...], data: bytes) -> np.ndarray:
    """A read-only array on ``data`` (what a ``_ByValue`` unpickles to)."""
    return np.frombuffer(data, dtype).reshape(shape)


def _mapped(value: Any, leaf: type, change: Callable[[Any], Any]) -> Any:
    """``value`` with ``change`` applied to every ``leaf`` in it (in tuples, named tuples, dicts)."""
    if isinstance(value, leaf):
        return change(value)
    if isinstance(value, dict):
        return {key: _mapped(item, leaf, change) for key, item in value.items()}
    if isinstance(value, tuple):
        items = [_mapped(item, leaf, change) for item in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    return value


RAY_CHANNEL_BYTES = 10**6  # Ray's own size of a compiled graph's channel (``RAY_CGRAPH_buffer_size_bytes``)


def message_bytes(work: Workload) -> int:
    """The most bytes a step of ``work`` sends or gets back through its graph's channels.

    A request holds the weights the step starts from, its rows (at most the whole
    order) and a replica's optimizer state; a reply the trained replica and state.
    Plus ``CHANNEL_SLACK_BYTES`` for what is around them.
    """
    optimizer = [spec for _, spec in work.optimizer_state]
    if work.optimizer_steps is not None:
        optimizer.append(work.optimizer_steps)
    rows = sum(_nbytes(spec) // spec.shape[0] for spec in optimizer)  # one replica's row of each
    return _nbytes(work.main) + _nbytes(work.order) + rows + CHANNEL_SLACK_BYTES


def _nbytes(spec: ArraySpec) -> int:
    return math.prod(spec.shape) * np.dtype(spec.dtype).itemsize


def machine() -> str:
    """This machine and boot, as a Ray actor and its driver compare them: host name and boot id."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = ""
    return f"{socket.gethostname()}/{boot}"


async def _awaited(ref: Any) -> None:
    """Wait for Ray's ``ref`` (a task group starts coroutines, not awaitables)."""
    await ref


async def _within(ref: Any, seconds: float) -> Any:
    """The value of Ray's ``ref``, or None if it takes longer than ``seconds``."""
    with anyio.move_on_after(seconds):
        return await ref
    return None


def _workers(workers: list[int]) -> str:
    """``worker 3`` or ``workers 0, 1``."""
    return f"worker {workers[0]}" if len(workers) == 1 else f"workers {', '.join(map(str, workers))}"


class _QuietAboutDeadActors(logging.Filter):
    """Drops Ray's traceback of a compiled graph torn down after its actor died: the executor
    replaces the actor and logs the loss itself (``ray_actor_lost``, ``ray_node_lost``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        import ray  # a record of Ray's logger: Ray is there

        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, ray.exceptions.RayActorError)


_QUIET_ABOUT_DEAD_ACTORS = _QuietAboutDeadActors()


def _ignore(name: str, **fields: Any) -> None:
    pass


def _quietly(action: Any, *args: Any) -> None:
    """Run a clean-up step whose failure (Ray already gone) must not hide the real error."""
    try:
        action(*args)
    except Exception as error:
        log.debug("ignored during Ray clean-up: %r", error)
