"""One clock for every process of the machine, and where a moment was taken.

``now`` is ``time.monotonic_ns``: Linux's ``CLOCK_MONOTONIC``, which counts from the
same moment (the boot) in every process, so a step stamped in a pool process and the
report stamped in the event loop's process lie on one time line
(``tests/test_timeline.py`` checks it across processes).  It never jumps with the
wall clock.  A stamp costs about 0.1-0.2 µs; ``os.getpid()`` and
``threading.get_native_id()`` are system calls (about 2 µs each on this machine), so
``place`` asks once per thread.
"""

from __future__ import annotations

import os
import threading
import time

now = time.monotonic_ns

_here = threading.local()


def place() -> tuple[int, int]:
    """(process id, thread id) of the caller: where a step ran, for its track in a timeline."""
    try:
        return _here.value
    except AttributeError:
        _here.value = (os.getpid(), threading.get_native_id())
        return _here.value


def _forget() -> None:
    """A forked child is another process: it must not inherit its parent's answer."""
    global _here
    _here = threading.local()


os.register_at_fork(after_in_child=_forget)
