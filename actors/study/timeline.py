"""A run's timeline, read back from its JSON log: when each slice went where, and who blocked when.

The log (``actors.records.pass_events``) gives every slice's moments in nanoseconds
after its pass' ``clock_ns``, a reading of the machine's monotonic clock; here they
become readings of that clock again, so the passes of a run, the coordinator's
process and the pool's processes share one time line.  ``trace`` draws it
(``actors.study.trace``, ``actors.study.timeline_figure``) and ``logs`` sums it
per worker (``breakdown``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from actors.switches import KINDS as SWITCH_KINDS
from brain.errors import UserError, shorten
from channels.stats import Interval  # (who, began, ended) on the machine's clock

Record = tuple[int | None, dict[str, Any]]  # (pass number, record), as actors.study.logs reads them
SIDES = ("send", "receive")
CHANNELS = ("data", "output")


@dataclass(frozen=True)
class SliceTimes:
    """One slice of a pass: where it went, and when (``at``: moment name → the machine's clock, ns)."""

    round: int  # the number of the round event it was logged in
    worker: int
    start: int
    stop: int
    process: int | None  # where its step ran
    thread: int | None
    at: dict[str, int]  # only the moments that happened

    def interval(self, began: str, ended: str) -> tuple[int, int] | None:
        """``(at[began], at[ended])``, or None when either is missing or they are out of order."""
        first, last = self.at.get(began), self.at.get(ended)
        if first is None or last is None or last < first:
            return None
        return first, last


@dataclass(frozen=True)
class PassTimes:
    """The timeline of one pass: its slices, its channels' blocked intervals, its context switches."""

    number: int  # the pass' number in the log, as ``logs`` counts them
    start: dict[str, Any]  # its pass_start record
    slices: tuple[SliceTimes, ...]
    # channel -> side ("send", "receive") -> blocked intervals
    blocked: dict[str, dict[str, tuple[Interval, ...]]] = field(default_factory=dict)
    switches: tuple[dict[str, Any], ...] = ()  # per process: pid, role, voluntary, involuntary, migrations

    @property
    def asynchronous(self) -> bool:
        return str(self.start.get("rounds", "Sync")).lower() == "async"

    def title(self) -> str:
        mode = self.start.get("mode", "?")
        epoch = f", epoch {self.start['epoch']}" if mode == "train" and "epoch" in self.start else ""
        return f"pass {self.number} ({mode}{epoch})"

    def round_numbers(self) -> list[int]:
        return list(self.rounds())

    def rounds(self) -> dict[int, list[SliceTimes]]:
        """Each round's slices, by round number in order (grouped once, not searched per round)."""
        grouped: dict[int, list[SliceTimes]] = {}
        for piece in self.slices:
            grouped.setdefault(piece.round, []).append(piece)
        return dict(sorted(grouped.items()))

    def span(self) -> tuple[int, int]:
        """From the pass' first send to its last merge (or report received, when nothing merges)."""
        first = min(piece.at.get("send_began", piece.at.get("sent", 0)) for piece in self.slices)
        ends = ("merge_ended", "report_received")
        last = max(piece.at.get(name, 0) for piece in self.slices for name in ends)
        return first, last

    def window(self, first: int, last: int) -> PassTimes:
        """Only rounds ``first`` to ``last`` (both included), and the blocked operations of their slices."""
        slices = tuple(piece for piece in self.slices if first <= piece.round <= last)
        homes: dict[str, list[tuple[int, int]]] = {}
        for piece in slices:
            for who, span in _waits(piece):
                if span is not None:
                    homes.setdefault(who, []).append(span)
        blocked = {
            channel: {
                side: tuple(
                    (who, began, ended) for who, began, ended in intervals
                    if any(a <= began and ended <= b for a, b in homes.get(who, ()))
                )
                for side, intervals in sides.items()
            }
            for channel, sides in self.blocked.items()
        }  # fmt: skip
        return replace(self, slices=slices, blocked=blocked)


def _waits(piece: SliceTimes) -> Iterator[tuple[str, tuple[int, int] | None]]:
    """Where a channel operation for this slice could block: who waited, and over which span."""
    worker = f"worker {piece.worker}"
    yield worker, piece.interval("asked", "received")
    yield worker, piece.interval("step_returned", "report_sent")
    yield "coordinator", piece.interval("receive_began", "report_received")
    for who in ("coordinator", "sender"):
        yield who, piece.interval("send_began", "sent")


def read_timeline(records: Sequence[Record], path: Path) -> tuple[list[PassTimes], int | None]:
    """Every pass of the log with moments, and the pid of the run's own process (None if not logged).

    Raises ``UserError`` naming the log when no pass has moments: a log written
    before they were recorded, or one with no round at all.
    """
    passes = passes_with_moments(records)
    if not passes:
        raise UserError(
            "the log has no timestamps: no round in it says when its slices were sent, computed and merged",
            where=path,
            allowed="a log written by this version of `python -m actors run` (run the batch again)",
        )
    pid = next((record.get("pid") for _, record in records if record["event"] == "run_start"), None)
    return passes, pid if isinstance(pid, int) else None


def passes_with_moments(records: Iterable[Record]) -> list[PassTimes]:
    """The passes of ``records`` whose rounds carry moments (an older log's have none: an empty list)."""
    starts: dict[int, dict[str, Any]] = {}
    slices: dict[int, list[SliceTimes]] = {}
    blocked: dict[int, dict[str, dict[str, tuple[Interval, ...]]]] = {}
    switches: dict[int, list[dict[str, Any]]] = {}
    last: int | None = None
    for number, record in records:
        event = record["event"]
        if event == "pass_start" and number is not None and isinstance(record.get("clock_ns"), int):
            starts[number] = record
        last = number if number is not None else last  # a pass' records may follow its pass_end
        owner = last
        if owner not in starts:
            continue
        origin = starts[owner]["clock_ns"]
        if event == "round":
            slices.setdefault(owner, []).extend(_slices(record, origin))
        elif event == "channel_stats":
            blocked.setdefault(owner, {})[str(record.get("channel"))] = {
                side: _intervals(record.get(f"blocked_{side}s_at"), origin) for side in SIDES
            }
        elif event == "context_switches":
            switches.setdefault(owner, []).extend(_switches(record))
    passes = []
    for number, found in sorted(slices.items()):
        start = starts[number]
        extra = (blocked.get(number, {}), tuple(switches.get(number, ())))
        passes.append(PassTimes(number, start, tuple(found), *extra))
    return passes


def _slices(record: dict[str, Any], origin: int) -> list[SliceTimes]:
    found = []
    for piece in record.get("slices", ()):
        at = piece.get("at")
        if not isinstance(at, dict):
            continue
        moments = {name: origin + value for name, value in at.items() if isinstance(value, int)}
        found.append(
            SliceTimes(
                int(record.get("round", 0)), int(piece.get("worker", -1)), int(piece.get("start", 0)),
                int(piece.get("stop", 0)), piece.get("process"), piece.get("thread"), moments,
            )
        )  # fmt: skip
    return found


def _intervals(value: Any, origin: int) -> tuple[Interval, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(
        (str(who), origin + began, origin + ended)
        for who, began, ended in (entry for entry in value if isinstance(entry, list) and len(entry) == 3)
        if isinstance(began, int) and isinstance(ended, int) and began <= ended
    )


def _switches(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-process counts of a ``context_switches`` record: a list of them under any key, or itself."""
    candidates = [value for value in record.values() if isinstance(value, list)] + [[record]]
    for candidate in candidates:
        found = [
            entry for entry in candidate
            if isinstance(entry, dict) and isinstance(entry.get("pid"), int)
            and any(isinstance(entry.get(kind), int | float) for kind in SWITCH_KINDS)
        ]  # fmt: skip
        if found:
            return found
    return []


ROUNDS_ALLOWED = "A:B, rounds A to B of each pass, both included, 1 ≤ A ≤ B (e.g. 10:13)"


def parse_rounds(text: str) -> tuple[int, int]:
    """``"A:B"`` as (A, B); a ``UserError`` for anything else."""
    first, colon, last = text.partition(":")
    if colon and first.strip().isdigit() and last.strip().isdigit():
        window = int(first), int(last)
        if 1 <= window[0] <= window[1]:
            return window
    raise UserError(f"--rounds {shorten(text)!r} is not a window of rounds", allowed=ROUNDS_ALLOWED)


def select(
    passes: Sequence[PassTimes], path: Path, pass_number: int | None, rounds: tuple[int, int] | None
) -> list[PassTimes]:
    """Pass ``pass_number`` (or every pass), cut to ``rounds``; a ``UserError`` when nothing is left."""
    if pass_number is not None:
        passes = [times for times in passes if times.number == pass_number]
        if not passes:
            raise UserError(f"no pass {pass_number} with timestamps in the log", where=path)
    if rounds is None:
        return list(passes)
    chosen = [cut for cut in (times.window(*rounds) for times in passes) if cut.slices]
    if not chosen:
        have = ", ".join(f"{t.title()}: rounds 1–{t.round_numbers()[-1]}" for t in passes)
        raise UserError(f"no round in {rounds[0]}:{rounds[1]}", where=path, allowed=have)
    return chosen


# --- where each worker's time went --------------------------------------------------------

STATES = ("compute", "waiting for data", "waiting to report", "idle")


def worker_intervals(piece: SliceTimes) -> dict[str, tuple[int, int] | None]:
    """The worker's states for this slice: computing (the step where it ran), waiting for it, reporting it.

    Compute is the step in its process (``step_began``–``step_ended``) when that was
    stamped (not by a step on another machine), else the whole wait for the executor.
    """
    compute = piece.interval("step_began", "step_ended") or piece.interval("step_called", "step_returned")
    return {
        "compute": compute,
        "waiting for data": piece.interval("asked", "received"),
        "waiting to report": piece.interval("step_returned", "report_sent"),
    }


def breakdown(times: PassTimes) -> dict[int, dict[str, float]]:
    """Per worker, the percent of the pass (first send to last merge) in each of ``STATES``.

    Idle is the rest: handing a step to its process and back, the event loop's
    turns, waiting at a barrier with nothing to do.  Each row sums to 100.
    """
    begin, end = times.span()
    whole = max(end - begin, 1)
    spent: dict[int, dict[str, float]] = {}
    for piece in times.slices:
        mine = spent.setdefault(piece.worker, dict.fromkeys(STATES, 0.0))
        for state, interval in worker_intervals(piece).items():
            if interval is not None:
                mine[state] += max(0, min(interval[1], end) - max(interval[0], begin))
    rows = {}
    for worker, mine in sorted(spent.items()):
        percent = {state: 100.0 * mine[state] / whole for state in STATES[:-1]}
        percent["idle"] = max(0.0, 100.0 - sum(percent.values()))
        rows[worker] = percent
    return rows
