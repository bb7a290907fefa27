"""``trace``: a run's timeline as Chrome Trace Event Format JSON, for Perfetto UI and chrome://tracing.

Tracks (the format's threads, grouped by process):

- the run's own process: the coordinator (each pass, each round, its sends, its waits
  for reports, its merges), the async sender, and one track per worker actor
  (waiting for a slice, the step, waiting to report); the blocked channel operations
  nested inside whichever of these they blocked;
- one process per pool process (or a track per thread, for the thread executor):
  the compute of each step it ran;
- counters, in the run's process: each channel's buffered items, waiting senders and
  waiting receivers; per process, its context switches when the log has them.

A flow (arrows ``s`` → ``t`` → ``t`` → ``f``, one id per slice) follows each slice
from its send to its step, its report and its merge.  Timestamps are µs since the
first moment shown, to the ns (three decimals); every slice of a track lies
inside the one it is drawn in, as the format requires.  Written with the standard
library's ``json``: the format is plain JSON and needs nothing more.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from actors.study.logs import read_log
from actors.study.timeline import (
    CHANNELS,
    SWITCH_KINDS,
    Interval,
    PassTimes,
    SliceTimes,
    read_timeline,
    select,
)  # fmt: skip
from brain.atomic import atomic_write, output_problem
from brain.errors import UserError

COORDINATOR, SENDER, FIRST_WORKER = 1, 2, 10  # tids of the actors' tracks in the run's process
RUN_PID = 1  # the run's process when its log does not name it
PICTURE_ROUNDS = 4  # rounds in a --png without --rounds
VIEWERS = "open it in https://ui.perfetto.dev (Open trace file) or chrome://tracing (Load)"


def make_trace(
    log: Path, out: Path, *, rounds: tuple[int, int] | None = None, pass_number: int | None = None,
    png: Path | None = None, report: Callable[[str], object] = print, note: Callable[[str], None] = print,
) -> None:  # fmt: skip
    """Write the trace of ``log`` to ``out`` and, with ``png``, its picture.

    The picture shows one pass (the first selected) and ``rounds``, or its first four
    rounds.  Everything a user can get wrong — an output that is a directory, a FIFO
    or the log itself, a log without timestamps, a window with no round — is a
    ``UserError``, raised before anything is written; ``note`` hears of damaged lines
    skipped in the log.
    """
    for target in (out, png):
        if target is not None:
            _check_output(target, log)
    passes, pid = read_timeline(read_log(log, note), log)
    chosen = select(passes, log, pass_number, rounds)
    trace = chrome_trace(chosen, pid, str(log))
    atomic_write(out, lambda handle: write_trace(trace, handle))
    shown = sum(len(times.slices) for times in chosen)
    report(f"wrote {out}: {shown} slices of {len(chosen)} passes; {VIEWERS}")
    if png is not None:
        from actors.study.timeline_figure import draw_timeline

        picture = chosen[0] if rounds is not None else chosen[0].window(1, PICTURE_ROUNDS)
        report(f"wrote {draw_timeline(picture, png)}")


def _check_output(path: Path, log: Path) -> None:
    problem = output_problem(path)
    if problem is None and os.path.exists(path) and os.path.samefile(path, log):
        problem = "is the log being read"
    if problem is not None:
        raise UserError(f"not written: it {problem}", where=path, allowed="a new or regular file")


def actor_tid(who: str) -> int | None:
    """The track of a channel's party ("coordinator", "sender", "worker 3"), or None."""
    if who == "coordinator":
        return COORDINATOR
    if who == "sender":
        return SENDER
    name, _, number = who.partition(" ")
    return FIRST_WORKER + int(number) if name == "worker" and number.isdigit() else None


class TraceBuilder:
    """Collects the events of a trace; ``events()`` returns them with their metadata, in time order."""

    def __init__(self, run_pid: int | None, zero: int) -> None:
        self.pid = run_pid or RUN_PID
        self.zero = zero  # the machine's clock (ns) at ts 0
        self._events: list[dict[str, Any]] = []
        self._threads: dict[tuple[int, int], str] = {}
        self._processes: dict[int, str] = {self.pid: f"run (pid {self.pid}): coordinator and workers"}
        self._flows = 0

    def us(self, ns: int) -> float:
        return round((ns - self.zero) / 1000, 3)

    def track(self, pid: int, tid: int, name: str) -> None:
        self._threads.setdefault((pid, tid), name)

    def actor(self, tid: int) -> tuple[int, int]:
        name = {COORDINATOR: "coordinator", SENDER: "sender"}.get(tid, f"worker {tid - FIRST_WORKER}")
        self.track(self.pid, tid, name)
        return self.pid, tid

    def step_track(self, piece: SliceTimes) -> tuple[int, int] | None:
        """Where the slice's step ran: a pool process, or a thread of the run's process."""
        if not piece.process:
            return None
        pid, tid = int(piece.process), int(piece.thread or piece.process)
        if pid == self.pid:
            self.track(pid, tid, "steps in the event loop" if tid == pid else f"step thread {tid}")
        else:
            self._processes.setdefault(pid, f"pool process (pid {pid})")
            self.track(pid, tid, f"pool process {pid}")
        return pid, tid

    def slice(self, where: tuple[int, int], name: str, span: tuple[int, int] | None, **args: Any) -> None:
        """An ``X`` event on ``where`` over ``span`` (ns on the machine's clock); nothing if span is None."""
        if span is None:
            return
        began, ended = span
        self._events.append({
            "name": name, "cat": "state", "ph": "X", "ts": self.us(began),
            "dur": round((ended - began) / 1000, 3), "pid": where[0], "tid": where[1], "args": args,
        })  # fmt: skip

    def counter(self, where: tuple[int, int], name: str, at: int, values: dict[str, float]) -> None:
        self._events.append({"name": name, "ph": "C", "ts": self.us(at), "pid": where[0], "tid": where[1],
                             "args": values})  # fmt: skip

    def flow(self, points: Sequence[tuple[tuple[int, int], int]], label: str) -> None:
        """Arrows through ``points`` ((track, ns) each, in time order): ``s``, then ``t``…, then ``f``."""
        if len(points) < 2:
            return
        self._flows += 1
        for index, (where, at) in enumerate(points):
            phase = "s" if index == 0 else "f" if index == len(points) - 1 else "t"
            event = {"name": "slice", "cat": "flow", "ph": phase, "id": self._flows, "ts": self.us(at),
                     "pid": where[0], "tid": where[1], "args": {"lines": label}}  # fmt: skip
            if phase == "f":
                event["bp"] = "e"  # bind to the slice it falls in, not the next one
            self._events.append(event)

    def process(self, pid: int, name: str) -> None:
        self._processes.setdefault(pid, name)

    def events(self) -> list[dict[str, Any]]:
        """Metadata first (names, then the order of the tracks), then every event by time.

        Among events at one instant the longer slice comes first, so that a slice opens
        before the slices inside it.
        """
        metadata: list[dict[str, Any]] = []
        processes = sorted(self._processes.items(), key=lambda item: item[0] != self.pid)  # the run's first
        for order, (pid, name) in enumerate(processes):
            metadata += [_metadata("process_name", pid, pid, name=name),
                         _metadata("process_sort_index", pid, pid, sort_index=order)]  # fmt: skip
        for (pid, tid), name in sorted(self._threads.items()):
            metadata += [_metadata("thread_name", pid, tid, name=name),
                         _metadata("thread_sort_index", pid, tid, sort_index=tid)]  # fmt: skip
        timed = sorted(self._events, key=lambda event: (event["ts"], -event.get("dur", 0)))
        return metadata + timed


def _metadata(kind: str, pid: int, tid: int, **args: Any) -> dict[str, Any]:
    return {"name": kind, "ph": "M", "ts": 0, "pid": pid, "tid": tid, "args": args}


def chrome_trace(passes: Sequence[PassTimes], run_pid: int | None, source: str = "") -> dict[str, Any]:
    """The trace of ``passes`` (each may be a window of its rounds), a Chrome Trace Event Format object."""
    zero = min(min(min(piece.at.values()) for piece in times.slices) for times in passes)
    builder = TraceBuilder(run_pid, zero)
    for times in passes:
        _pass(builder, times)
    return {
        "traceEvents": builder.events(),
        "displayTimeUnit": "ms",
        "otherData": {
            "source": source,
            "clock": "CLOCK_MONOTONIC of the machine; ts in µs since the first moment shown",
        },
    }


def write_trace(trace: dict[str, Any], handle: IO[bytes]) -> None:
    handle.write(json.dumps(trace, separators=(",", ":")).encode())


def _pass(builder: TraceBuilder, times: PassTimes) -> None:
    coordinator = builder.actor(COORDINATOR)
    sender = builder.actor(SENDER) if times.asynchronous else coordinator
    begin = min(min(piece.at.values()) for piece in times.slices)
    end = max(max(piece.at.values()) for piece in times.slices)
    builder.slice(coordinator, times.title(), _coordinator_span(times), **_pass_args(times))
    if not times.asynchronous:
        for number, pieces in times.rounds().items():
            span = _coordinator_span(times, pieces)
            builder.slice(coordinator, f"round {number}", span, slices=len(pieces))
    for piece in times.slices:
        _slice(builder, piece, coordinator, sender)
    for channel, sides in times.blocked.items():
        for side, intervals in sides.items():
            for who, began, ended in intervals:
                tid = actor_tid(who)
                if tid is not None:
                    name = f"blocked {side} ({channel})"
                    builder.slice(builder.actor(tid), name, (began, ended), channel=channel)
    _channel_counters(builder, times, coordinator, begin, end)
    _switch_counters(builder, times, begin, end)


def _pass_args(times: PassTimes) -> dict[str, Any]:
    keys = ("mode", "epoch", "lines", "parallel", "executor", "data_capacity", "output_capacity", "rounds")
    return {key: times.start[key] for key in keys if key in times.start}


def _coordinator_span(times: PassTimes, pieces: Sequence[SliceTimes] | None = None) -> tuple[int, int]:
    """From the first send (or, async, the first wait for a report) to the last merge of ``pieces``."""
    pieces = times.slices if pieces is None else pieces
    names = ("send_began", "sent", "receive_began", "report_received", "merge_began", "merge_ended")
    if times.asynchronous:
        names = names[2:]
    stamps = [piece.at[name] for piece in pieces for name in names if name in piece.at]
    return min(stamps), max(stamps)


Track = tuple[int, int]  # (pid, tid)


def _slice(builder: TraceBuilder, piece: SliceTimes, coordinator: Track, sender: Track) -> None:
    """A slice's states on the coordinator's, its worker's and its process' tracks, and its flow."""
    lines = f"{piece.start}–{piece.stop}"
    args = {"lines": lines, "worker": piece.worker, "round": piece.round}
    worker = builder.actor(FIRST_WORKER + piece.worker)
    send = piece.interval("send_began", "sent")
    builder.slice(sender, f"send {lines}", send, **args)
    builder.slice(worker, "waiting for a slice", piece.interval("asked", "received"), **args)
    step = piece.interval("step_called", "step_returned")
    builder.slice(worker, "step", step, **args)
    report = piece.interval("step_returned", "report_sent")
    builder.slice(worker, "waiting to report", report, **args)
    receive = piece.interval("receive_began", "report_received")
    builder.slice(coordinator, "waiting for a report", receive, **args)
    merge = piece.interval("merge_began", "merge_ended")
    builder.slice(coordinator, "merge", merge, **args)
    where = builder.step_track(piece)
    compute = piece.interval("step_began", "step_ended")
    if where is not None:
        builder.slice(where, f"compute {lines}", compute, **args)
    # One point inside each slice the flow passes through, never after the moment the slice
    # was handed on (a blocked send returns only after its receiver took the item).
    points = [
        (sender, _inside(send, piece.at.get("received"))),
        (where, _inside(compute)) if where is not None and compute else (worker, _inside(step)),
        (worker, _inside(report, piece.at.get("report_received"))),
        (coordinator, _inside(merge) if merge else piece.at.get("report_received")),  # test: no merge
    ]
    builder.flow([(track, at) for track, at in points if at is not None], lines)


def _inside(span: tuple[int, int] | None, handed_on: int | None = None) -> int | None:
    """The middle of ``span``, or the moment it handed the slice on if that came first."""
    if span is None:
        return None
    middle = (span[0] + span[1]) // 2
    return middle if handed_on is None or not span[0] <= handed_on <= middle else handed_on


def _changes(steps: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """A counter's (time, value) at each change, from (time, +1 or -1) steps; one value per instant."""
    values: dict[int, int] = {}
    level = 0
    for at, delta in sorted(steps):
        level += delta
        values[at] = level
    return sorted(values.items())


def _channel_counters(builder: TraceBuilder, times: PassTimes, where: Track, begin: int, end: int) -> None:
    """Each channel's buffered items and its waiting senders and receivers, over the pass."""
    for channel in CHANNELS:
        blocked = times.blocked.get(channel, {})
        counters: dict[str, list[tuple[int, int]]] = {"buffered": _changes(_buffered(times, channel))}
        for side, waiting in (("send", "waiting senders"), ("receive", "waiting receivers")):
            intervals: tuple[Interval, ...] = blocked.get(side, ())
            counters[waiting] = _changes(step for _, a, b in intervals for step in ((a, 1), (b, -1)))
        for name, changes in counters.items():
            label = f"{channel} channel: {name}"
            builder.counter(where, label, begin, {"count": 0})
            for at, value in changes:
                builder.counter(where, label, at, {"count": value})
            builder.counter(where, label, end, {"count": 0})


def _buffered(times: PassTimes, channel: str) -> Iterator[tuple[int, int]]:
    """+1 when an item went into ``channel``'s buffer, -1 when it was taken out.

    An item stays in the buffer from its send until taken, unless the send handed it
    straight to a receiver that was waiting (blocked) then: it never was in the buffer;
    nor is anything, ever, in a rendezvous channel's.
    """
    if times.start.get(f"{channel}_capacity") == 0:
        return
    put, taken = ("sent", "received") if channel == "data" else ("report_sent", "report_received")
    waits: dict[str, list[tuple[int, int]]] = {}
    for who, began, ended in times.blocked.get(channel, {}).get("receive", ()):
        waits.setdefault(who, []).append((began, ended))
    for piece in times.slices:
        span = piece.interval(put, taken)
        receiver = f"worker {piece.worker}" if channel == "data" else "coordinator"
        if span is not None and not any(a <= span[0] <= b for a, b in waits.get(receiver, ())):
            yield span[0], 1
            yield span[1], -1


def _switch_counters(builder: TraceBuilder, times: PassTimes, begin: int, end: int) -> None:
    """Each process' context switches over the pass, when the log has them (zero at its start)."""
    for entry in times.switches:
        pid = int(entry["pid"])
        role = str(entry.get("role") or entry.get("process") or "process")  # "process": actors.switches
        where = (builder.pid, COORDINATOR) if pid == builder.pid else (pid, pid)
        if pid != builder.pid:
            builder.process(pid, f"{role} (pid {pid})")
            builder.track(pid, pid, f"{role} {pid}")
        counts = {kind: entry.get(kind) for kind in SWITCH_KINDS}
        kinds = {kind: float(value) for kind, value in counts.items() if isinstance(value, int | float)}
        label = f"context switches: {role} {pid}"
        builder.counter(where, label, begin, dict.fromkeys(kinds, 0.0))
        builder.counter(where, label, end, kinds)
