"""What Linux says of a process in ``/proc/PID/stat``, read in one place."""

from __future__ import annotations

import os


def stat_fields(pid: int | str) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` from the third on (``[0]`` the state, ``[1]`` the parent,
    ``[19]`` the start time in clock ticks after boot); None if the process is gone or its
    record cannot be read.  The command name before them, in parentheses, may itself hold
    spaces and parentheses: the record is split after its last ``)``."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def children_by_parent() -> dict[int, list[int]]:
    """Every process alive now, listed under its parent's pid (one read of every ``stat``)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := stat_fields(entry)) is not None and len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry))
    return children
