"""Counting the copies of a data set that went to other nodes, when Ray's object directory lags."""

from __future__ import annotations

import pytest

from actors.executors import ray_placement
from actors.executors.ray_placement import Placement


class _Experimental:
    """Ray's object directory as a busy cluster shows it: only the nodes it has caught up with."""

    def __init__(self, listed: dict[str, list[str]], size: int) -> None:
        self.listed, self.size, self.asked = listed, size, 0

    def get_object_locations(self, refs: list[str]) -> dict[str, dict]:
        self.asked += 1
        return {ref: {"node_ids": list(self.listed[ref]), "object_size": self.size} for ref in refs}


class _Ray:
    def __init__(self, experimental: _Experimental) -> None:
        self.experimental = experimental


def _placement(experimental: _Experimental) -> Placement:
    placement = Placement.__new__(Placement)  # no placement group: only the counting is tested
    placement._ray = _Ray(experimental)
    placement.driver_node = "driver"
    placement._copies = {}
    return placement


@pytest.mark.asyncio
async def test_a_holder_the_directory_has_not_listed_is_counted_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ray_placement, "COPY_SECONDS", 0.1)
    directory = _Experimental({"inputs": ["driver"], "targets": ["driver"]}, size=1000)
    placement = _placement(directory)
    assert await placement.count_copies(("inputs", "targets"), {"node1"}) == 2000
    assert directory.asked > 1  # it waited for the directory first
    directory.listed = {"inputs": ["driver", "node1"], "targets": ["driver", "node1"]}
    assert await placement.count_copies(("inputs", "targets"), {"node1"}) == 0  # not twice


@pytest.mark.asyncio
async def test_copies_on_the_drivers_node_are_not_moved_and_extra_listed_copies_are() -> None:
    directory = _Experimental({"inputs": ["driver", "node2"]}, size=500)
    placement = _placement(directory)
    assert await placement.count_copies(("inputs",), {"driver"}) == 500  # node2's copy, listed
    assert await placement.count_copies(("inputs",), {"driver", "node2"}) == 0
