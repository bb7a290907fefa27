"""Where the ray executor's actors run: one CPU per worker, spread over the cluster's nodes or packed.

The workers' Ray actors live in one *placement group* of a bundle of one CPU per
worker, laid out by Ray with the ``SPREAD`` strategy (``RayPlacement: spread``: as
many nodes as there are, as evenly as the nodes' CPUs allow) or ``PACK`` (as few
nodes as possible); worker ``w``'s actor runs in bundle ``w``.  Ray reserves the
bundles before any actor starts, so a cluster without room says so at once instead
of leaving some actors waiting.  When a node dies, Ray moves its bundles to
surviving nodes with room, if there are any: a replacement actor started in the
same bundle lands there.

The placement also measures what went between nodes: a data set is put into the
object store once, on the driver's node, and each node that runs an actor fetches
it once, however many actors it runs (they map the node's one copy).  Ray's object
directory says which nodes hold a copy, and each node whose actors took the data set
holds one whether the directory lists it yet or not; every copy beyond the driver's is
counted as moved.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import anyio

from actors.vocabulary import RayPlacement
from brain.errors import UserError

STRATEGIES = {RayPlacement.SPREAD: "SPREAD", RayPlacement.PACK: "PACK"}
COPY_SECONDS = 5.0  # how long a new copy may take to appear in Ray's object directory
REMOVE_SECONDS = 10.0  # how long closing waits for Ray to free the group's CPUs


class Placement:
    """The placement group of a ray executor's actors and the node each worker runs on.

    Raises ``UserError`` if the cluster has no room for the bundles within ``timeout``
    seconds.  ``close`` removes the group (and so frees its CPUs); idempotent, never raises.
    """

    def __init__(self, ray: Any, workers: int, strategy: RayPlacement, timeout: float) -> None:
        self._ray = ray
        self.strategy = RayPlacement.check(strategy)
        self.driver_node = ray.get_runtime_context().get_node_id()
        self.nodes: dict[int, str] = {}  # worker → the node its actor runs on
        self.lost: dict[str, dict[str, Any]] = {}  # node found dead → its ``ray_node_lost`` fields
        self._copies: dict[Any, set[str]] = {}  # object put → the nodes known to hold it
        self._group = ray.util.placement_group([{"CPU": 1}] * workers, strategy=STRATEGIES[self.strategy])
        if not self._group.wait(timeout):
            self.close()
            raise UserError(
                f"the Ray cluster found no room for {workers} workers of one CPU each "
                f"({self.strategy}) within {timeout:.0f} s",
                allowed=f"a cluster with {workers} free CPUs, or a smaller Parallel",
            )

    def options(self, worker: int) -> dict[str, Any]:
        """The actor options that put worker ``worker``'s actor into its bundle."""
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        strategy = PlacementGroupSchedulingStrategy(self._group, placement_group_bundle_index=worker)
        return {"num_cpus": 1, "scheduling_strategy": strategy}

    def between_nodes(self, worker: int) -> bool:
        """Whether worker ``worker``'s steps cross the network: its actor is not on the driver's node."""
        return self.nodes.get(worker, self.driver_node) != self.driver_node

    def describe(self) -> dict[str, Any]:
        """The ``ray_placement`` event's fields: the strategy and each worker's node."""
        addresses = self._addresses()
        workers = [
            {"worker": worker, "node": node, "address": addresses.get(node, "?")}
            for worker, node in sorted(self.nodes.items())
        ]
        return {
            "placement": self.strategy, "nodes": len(set(self.nodes.values())), "workers": workers,
            "driver_node": self.driver_node,
        }  # fmt: skip

    def newly_lost(self, node: str, worker: int) -> dict[str, Any] | None:
        """If ``node``, where ``worker``'s actor ran, has died and was not reported yet: the
        ``ray_node_lost`` fields (the node, its address, the workers that ran on it, the CPUs left)."""
        if node in self.lost or self._alive(node):
            return None
        on_it = {worker} | {other for other, where in self.nodes.items() if where == node}
        self.lost[node] = {
            "node": node, "address": self.address(node), "workers": sorted(on_it), "cpus_left": self.cpus(),
        }  # fmt: skip
        return self.lost[node]

    def cpus(self) -> float:
        """The CPUs of the nodes alive now."""
        return self._ray.cluster_resources().get("CPU", 0)

    def address(self, node: str) -> str:
        """The node's IP address, as Ray knows it."""
        return self._addresses().get(node, "?")

    async def count_copies(self, refs: tuple, holders: set[str]) -> int:
        """Bytes of ``refs`` newly copied to other nodes, now that actors on ``holders`` hold them.

        Waits (at most ``COPY_SECONDS``) until Ray's object directory lists every holder,
        for the copies beyond them that it knows of; a holder it has not listed by then
        (a busy cluster updates it late) is counted all the same.
        """
        deadline = time.monotonic() + COPY_SECONDS
        found = self._ray.experimental.get_object_locations(list(refs))
        while not all(holders <= set(info["node_ids"]) for info in found.values()):
            if time.monotonic() > deadline:
                break
            await anyio.sleep(0.05)
            found = self._ray.experimental.get_object_locations(list(refs))
        moved = 0
        for ref, info in found.items():
            known = self._copies.setdefault(ref, {self.driver_node})
            # A holder has a copy, listed or not: its actor could not have taken the data otherwise.
            new = (set(info["node_ids"]) | holders) - known
            known |= new
            moved += len(new) * info["object_size"]
        return moved

    def _alive(self, node: str) -> bool:
        return any(entry["NodeID"] == node and entry["Alive"] for entry in self._ray.nodes())

    def _addresses(self) -> dict[str, str]:
        return {entry["NodeID"]: entry["NodeManagerAddress"] for entry in self._ray.nodes()}

    def close(self) -> None:
        """Remove the group and wait (at most ``REMOVE_SECONDS``) until Ray has freed its CPUs, so
        that the next executor's group finds them."""
        group, self._group = self._group, None
        if group is None:
            return
        with contextlib.suppress(Exception):  # Ray already gone: nothing is reserved any more
            self._ray.util.remove_placement_group(group)
            deadline = time.monotonic() + REMOVE_SECONDS
            while self._ray.util.placement_group_table(group)["state"] != "REMOVED":
                if time.monotonic() > deadline:
                    break
                time.sleep(0.02)
