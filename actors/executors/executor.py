"""Where the numeric steps run: what an executor does, and the one called for by name.

Every executor runs the same numeric step on the same shared arrays, so all give
the same numbers for the same seed (with Parallel 1, bit for bit): ``inline`` and
``thread`` in this process (``actors.executors.local``), ``process`` and
``processpool`` in a pool of processes (``actors.executors.process``), ``ray`` in
Ray actors here or on a cluster (``actors.executors.ray``).  Each is imported when it
is asked for, so that this module loads no kernels: the command line can start a
pool's server (``start_early``) before the rest of the runtime is imported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from actors.executors.pool import fork_server
from actors.vocabulary import ExecutorName, RayPlacement

if TYPE_CHECKING:
    from actors.executors.local import InlineExecutor, ThreadExecutor
    from actors.executors.process import ProcessExecutor
    from actors.executors.step import Workload
    from actors.messages import StepResult

EventSink = Callable[..., Any]

EXECUTORS = tuple(ExecutorName)


class Executor(Protocol):
    """Runs one numeric step; ``workers`` steps may be asked for at once."""

    name: ExecutorName

    async def everywhere(self, function: Callable[[], object]) -> None:
        """Run ``function`` where the steps run, e.g. to load kernels before a pass is timed."""

    async def prepare(self, work: Workload) -> None:
        """Make ``work``'s data available where the steps run, before the pass is timed."""

    async def run(self, work: Workload, worker: int, start: int, stop: int) -> StepResult: ...

    # Optional: ``process_ids() -> dict[str, int]``, the other processes of this machine where the
    # steps run, by name (``pool 0``, ``ray actor 1``): ``actors.switches`` reads their context switches.

    def end_pass(self) -> None:
        """The pass is over, however it ended (Ray logs what it moved between nodes); never raises."""

    def close(self) -> None: ...


def start_early(names: Iterable[ExecutorName]) -> None:
    """Start now, without waiting for it, what the executors called ``names`` will need and
    takes long to start: the process executors' fork server (about a second in its own
    process, loading the kernels), so that it overlaps with this process' own start."""
    if {ExecutorName.PROCESS, ExecutorName.PROCESSPOOL} & set(names):
        fork_server()


def make_executor(
    name: ExecutorName,
    workers: int,
    on_event: EventSink | None = None,
    *,
    ray_address: str = "local",
    ray_placement: RayPlacement = RayPlacement.SPREAD,
    pin: bool = True,
    batch_scheduling: bool = True,
) -> Executor:
    """The executor called ``name`` for ``workers`` worker actors.

    ``ray_address`` and ``ray_placement`` (the RayAddress and RayPlacement settings)
    matter only to ``ray``, which is an optional extra: without Ray installed, asking
    for it raises one ``UserError``.  ``pin`` (PinProcesses) and ``batch_scheduling``
    (BatchScheduling) only to ``process``.  A
    ``name`` or ``ray_placement`` that is not a member of its vocabulary is a ``TypeError``.
    """
    name = ExecutorName.check(name)
    RayPlacement.check(ray_placement)
    if name is ExecutorName.RAY:
        from actors.executors.ray import RayExecutor

        return RayExecutor(workers, ray_address, placement=ray_placement, on_event=on_event)
    from actors.executors.local import InlineExecutor, ThreadExecutor
    from actors.executors.process import ProcessExecutor, StandardPoolExecutor

    executor: InlineExecutor | ThreadExecutor | ProcessExecutor
    if name is ExecutorName.INLINE:
        executor = InlineExecutor(workers)
    elif name is ExecutorName.THREAD:
        executor = ThreadExecutor(workers)
    elif name is ExecutorName.PROCESS:
        executor = ProcessExecutor(workers, on_event=on_event, pin=pin, batch_scheduling=batch_scheduling)
    else:
        executor = StandardPoolExecutor(workers, on_event=on_event)
    executor.warm_up()
    return executor
