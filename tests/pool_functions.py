"""What the pool tests run in pool processes: the standard library alone, quick to import there."""

from __future__ import annotations

import time


def sleep_then(seconds: float, value: object) -> tuple[object, float, float]:
    """``value`` after ``seconds``, with when the call began and ended (``time.monotonic``:
    one clock for every process of the machine)."""
    began = time.monotonic()
    time.sleep(seconds)
    return value, began, time.monotonic()


def attached_paths() -> list[str]:
    """The arena files this process has mapped (``actors.executors.arena.attach``)."""
    from actors.executors.arena import _attached

    return sorted(_attached)
