"""``logs``: a run's JSON log, summarised per pass, per worker and per channel, or filtered for ``jq``.

A log (``actors.records.journal``) is one JSON object per line.  Passes are numbered here
in the order their ``pass_start`` records appear (1, 2, …, across repetitions
and runs in one file); a pass holds the records from its ``pass_start`` to its
``pass_end`` (or ``pass_failed``, ``checkpoint_written``); run-level records
between passes belong to none.  The filters keep a record when it matches all of them:
its event is one of ``--event``; it concerns ``--worker`` (a ``worker_stats``
record of that worker, or a ``round`` in which that worker reported); it belongs
to pass ``--pass``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from actors.study.tables import show
from brain.errors import UserError
from brain.user_files import MAX_TEXT_BYTES, read_bytes

PASS = "pass"  # the key under which a record's pass number is kept beside it (not written by --json)


def newest_log(folder: Path) -> Path:
    """The most recently written ``*.jsonl`` in ``folder``."""
    logs = sorted(folder.glob("*.jsonl"), key=lambda path: path.stat().st_mtime) if folder.is_dir() else []
    if not logs:
        raise UserError("no JSON logs found", where=folder, allowed="a folder holding run-*.jsonl, or a FILE")
    return logs[-1]


def read_log(
    path: Path, note: Callable[[str], None] = lambda text: None
) -> list[tuple[int | None, dict[str, Any]]]:
    """Every record of the log with its pass number (None before the first pass).

    A run that was killed leaves its last line cut off: the log is read up to the
    last complete line.  Another damaged record (a line that begins as a JSON
    object but does not parse: a write cut short by a full disk, say) is skipped.
    Either is told to ``note`` in one line naming the lines.  Raises ``UserError``
    naming the file for a missing or unreadable file, and naming the line for one
    that is not a record at all (the file is no log) or when no record is complete.
    """
    data = read_bytes(path, "log file", limit=MAX_TEXT_BYTES)
    records: list[tuple[int | None, dict[str, Any]]] = []
    damaged: list[int] = []  # numbers of the lines that began a record and were cut short
    started = 0  # passes begun so far
    number: int | None = None  # the pass the next record belongs to
    lines = data.split(b"\n")  # each line decoded on its own: a write cut inside a character spoils one
    if lines[-1] == b"":
        lines.pop()
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)  # UTF-8 bytes
        except (json.JSONDecodeError, UnicodeDecodeError):
            if line.lstrip().startswith(b"{"):
                damaged.append(line_number)
                continue
            record = None
        if not isinstance(record, dict) or "event" not in record:
            raise UserError(
                "not a JSON log: this line is not a JSON object with an 'event'",
                where=path,
                line=line_number,
                allowed="the .jsonl logs `python -m actors run` writes into logs/",
            )
        if record["event"] == "pass_start":
            started += 1
            number = started
        records.append((number, record))
        if record["event"] in ("pass_end", "pass_failed", "checkpoint_written"):
            number = None
    if not records:
        where = "no complete record" if damaged else "no records"
        raise UserError(f"the log holds {where}", where=path, line=damaged[0] if damaged else None)
    if damaged:
        cut_off = damaged[-1] == len(lines) and not data.endswith(b"\n")
        note(_skipped(path, damaged[:-1] if cut_off else damaged, len(lines) if cut_off else None))
    return records


def _skipped(path: Path, damaged: list[int], cut_off: int | None) -> str:
    """One line on what ``read_log`` skipped: the ``damaged`` lines, the unfinished last line ``cut_off``."""
    parts = []
    if cut_off is not None:
        parts.append(
            f"line {cut_off} is cut off (was the run killed while writing it?): read up to line {cut_off - 1}"
        )
    if len(damaged) == 1:
        parts.append(f"skipped line {damaged[0]}, a damaged record")
    elif damaged:
        numbers = ", ".join(str(n) for n in damaged[:5]) + (", …" if len(damaged) > 5 else "")
        parts.append(f"skipped {len(damaged)} damaged records, lines {numbers}")
    return f"{path}: " + "; ".join(parts)


def select(
    records: list[tuple[int | None, dict[str, Any]]],
    events: Sequence[str],
    worker: int | None,
    pass_number: int | None,
) -> list[tuple[int | None, dict[str, Any]]]:
    """The records that match every filter given."""
    wanted = {event for text in events for event in text.split(",") if event}
    return [
        (number, record)
        for number, record in records
        if (not wanted or record["event"] in wanted)
        and (pass_number is None or number == pass_number)
        and (worker is None or _concerns(record, worker))
    ]


def _concerns(record: dict[str, Any], worker: int) -> bool:
    if "worker" in record:
        return record["worker"] == worker
    return any(piece.get("worker") == worker for piece in record.get("slices", ()))


def print_json(records: Iterable[tuple[int | None, dict[str, Any]]]) -> None:
    """The records as they were, one JSON object per line."""
    for _, record in records:
        sys.stdout.write(json.dumps(record) + "\n")


def show_summary(
    console: Console, path: Path, records: list[tuple[int | None, dict[str, Any]]], show_records: bool
) -> None:
    """Tables of the passes, workers and channels found in ``records``; with ``show_records`` the
    records themselves, one line each, instead."""
    console.print(Text.assemble((str(path), "bold"), f": {len(records)} records"))
    if show_records:
        for number, record in records:
            console.print(_one_line(number, record), soft_wrap=True)
        return
    by_event: dict[str, list[tuple[int | None, dict[str, Any]]]] = {}
    for number, record in records:
        by_event.setdefault(record["event"], []).append((number, record))
    _runs(console, by_event.get("run_start", []))
    _passes(console, by_event.get("pass_start", []), by_event.get("pass_end", []))
    _workers(console, by_event.get("worker_stats", []))
    _time_shares(console, records)
    _channels(console, by_event.get("channel_stats", []))
    _switches(console, by_event.get("context_switches", []), by_event.get("pass_end", []))
    _ray(console, by_event)
    problems = [(n, r) for n, r in records if r.get("level") == "error"]
    for number, record in problems:
        console.print(_one_line(number, record), style="red", soft_wrap=True)


_QUIET_KEYS = {
    "event", "run", "timestamp", "level", "slices", "versions", "blocked_sends_at", "blocked_receives_at",
}  # fmt: skip


def _one_line(number: int | None, record: dict[str, Any]) -> str:
    fields = " ".join(f"{key}={_short(value)}" for key, value in record.items() if key not in _QUIET_KEYS)
    where = f"pass {number} " if number is not None else ""
    return f"{record.get('timestamp', '')} {where}{record['event']}: {fields}"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _runs(console: Console, starts: list[tuple[int | None, dict[str, Any]]]) -> None:
    for _, record in starts:
        versions = record.get("versions", {})
        text = (
            f"run {record.get('run', '?')}: batch {record.get('batch', '?')}, "
            f"{record.get('passes', '?')} passes, "
            f"python {versions.get('python', '?')}, {versions.get('cpus', '?')} CPUs"
        )
        console.print(text)


def _passes(console: Console, starts: list, ends: list) -> None:
    if not starts:
        return
    finished = {number: record for number, record in ends}
    rows = []
    for number, start in starts:
        end = finished.get(number, {})
        accuracy = end.get("correct_percent")
        rows.append(
            (
                number,
                start.get("mode", "?"),
                start.get("epoch", "?"),
                start.get("lines", "?"),
                start.get("parallel", "?"),
                start.get("executor", "?"),
                _capacities(start),
                start.get("rounds", "?"),
                _seconds(end.get("seconds")),
                end.get("rounds", "—"),
                _seconds(end.get("overhead_seconds")),
                "—" if accuracy is None else f"{accuracy:.2f}",
                "done" if end else "unfinished",
            )
        )
    header = (
        "pass",
        "mode",
        "epoch",
        "lines",
        "workers",
        "executor",
        "capacity data/output",
        "rounds",
        "time (s)",
        "rounds run",
        "overhead (s)",
        "accuracy (%)",
        "status",
    )
    show(console, "Passes", header, rows)


def _workers(console: Console, tallies: list) -> None:
    if not tallies:
        return
    totals: dict[int, dict[str, float]] = {}
    passes: dict[int, set] = {}
    for number, record in tallies:
        mine = totals.setdefault(record["worker"], dict.fromkeys(_WORKER_KEYS, 0.0))
        for key in _WORKER_KEYS:
            mine[key] += float(record.get(key, 0.0))
        passes.setdefault(record["worker"], set()).add(number)
    rows = []
    for worker in sorted(totals):
        t = totals[worker]
        whole = t["computing"] + t["waiting_for_slices"] + t["waiting_to_report"]
        busy = 100.0 * t["computing"] / whole if whole else 0.0
        rows.append(
            (
                worker,
                len(passes[worker]),
                int(t["slices"]),
                int(t["lines"]),
                f"{t['computing']:.3f}",
                f"{busy:.1f}",
                f"{t['waiting_for_slices']:.3f}",
                f"{t['waiting_to_report']:.3f}",
            )
        )
    header = (
        "worker",
        "passes",
        "slices",
        "lines",
        "busy (s)",
        "busy (%)",
        "waiting on data channel (s)",
        "waiting on output channel (s)",
    )
    show(console, "Workers (summed over the passes shown)", header, rows)


def _time_shares(console: Console, records: list[tuple[int | None, dict[str, Any]]]) -> None:
    """Per pass and worker, where its time went (``actors.study.timeline.breakdown``); older logs: nothing."""
    from actors.study.timeline import STATES, breakdown, passes_with_moments

    rows = [
        (times.number, worker, *(f"{shares[state]:.1f}" for state in STATES))
        for times in passes_with_moments(records)
        for worker, shares in breakdown(times).items()
    ]
    if rows:
        header = ("pass", "worker", *(f"{state} (%)" for state in STATES))
        show(console, "Workers' time, % of the pass (its first send to its last merge)", header, rows)


_WORKER_KEYS = ("slices", "lines", "computing", "waiting_for_slices", "waiting_to_report")


def _channels(console: Console, stats: list) -> None:
    if not stats:
        return
    rows = [
        (
            number,
            record.get("channel", "?"),
            _capacity(record.get("capacity")),
            record.get("sent", 0),
            record.get("blocked_sends", 0),
            _seconds(record.get("send_blocked_seconds")),
            record.get("blocked_receives", 0),
            _seconds(record.get("receive_blocked_seconds")),
            record.get("high_water", 0),
        )
        for number, record in stats
    ]
    header = (
        "pass",
        "channel",
        "capacity",
        "sent",
        "blocked sends",
        "send blocked (s)",
        "blocked receives",
        "receive blocked (s)",
        "high-water mark",
    )
    show(console, "Channels", header, rows)


def _switches(console: Console, switches: list, ends: list) -> None:
    """Each process' context switches per pass, and per round of it (``actors.switches``)."""
    if not switches:
        return
    rounds = {number: record.get("rounds") for number, record in ends}

    def count(value: Any, per: Any) -> str:
        if value is None:
            return "—"
        return f"{value} ({value / per:.1f})" if per else str(value)

    rows = [
        (number, record.get("process", "?"), record.get("pid", "?"),
         *(count(record.get(key), rounds.get(number)) for key in _SWITCH_KEYS))
        for number, record in switches
    ]  # fmt: skip
    header = ("pass", "process", "pid", "voluntary", "involuntary", "CPU migrations", "task resumptions",
              "blocked channel operations")  # fmt: skip
    show(console, "Context switches in all (per round)", header, rows)


_SWITCH_KEYS = ("voluntary", "involuntary", "migrations", "task_resumptions", "blocked_operations")


def _ray(console: Console, by_event: dict[str, list[tuple[int | None, dict[str, Any]]]]) -> None:
    """Where Executor ray ran its workers, the nodes it lost, and what each pass moved."""
    for _, record in by_event.get("ray_placement", []):
        nodes = record.get("nodes", "?")
        workers = ", ".join(
            f"worker {entry['worker']} → {entry.get('address', '?')} ({_node(entry.get('node'))})"
            for entry in record.get("workers", ())
        )
        plural = "" if nodes == 1 else "s"
        console.print(f"Ray placement {record.get('placement', '?')}: {nodes} node{plural}; {workers}")
    for number, record in by_event.get("ray_node_lost", []):
        workers = ", ".join(str(worker) for worker in record.get("workers", ()))
        console.print(
            f"pass {number}: Ray node {record.get('address', '?')} ({_node(record.get('node'))}) lost with "
            f"workers {workers}; {record.get('cpus_left', '?')} CPUs left",
            style="yellow",
        )
    traffic = by_event.get("ray_traffic", [])
    if not traffic:
        return
    rows = [
        (
            number, record.get("steps", 0), _megabytes(record.get("data_moved_bytes")),
            _megabytes(record.get("step_bytes")), _megabytes(record.get("between_nodes_bytes")),
            record.get("restarts", 0),
        )
        for number, record in traffic
    ]  # fmt: skip
    header = ("pass", "steps", "data to other nodes (MB)", "steps' bytes (MB)", "of them between nodes (MB)",
              "actors replaced")  # fmt: skip
    show(console, "Ray traffic", header, rows)


def _node(node: Any) -> str:
    return "node ?" if not node else f"node {str(node)[:8]}"


def _megabytes(value: Any) -> str:
    return "—" if value is None else f"{float(value) / 1e6:.2f}"


def _capacities(start: dict[str, Any]) -> str:
    return f"{_capacity(start.get('data_capacity', '?'))}/{_capacity(start.get('output_capacity', '?'))}"


def _capacity(value: Any) -> str:
    """JSON has no infinity: the journal writes an unbounded capacity as null or "inf"."""
    if value is None or value == "inf":
        return "unbounded"
    return str(value)


def _seconds(value: Any) -> str:
    return "—" if value is None else f"{float(value):.3f}"
