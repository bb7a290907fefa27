"""``trace``: the Chrome Trace Event Format JSON of a small run, its PNG, and what a user can get wrong;
``logs``' breakdown of each worker's time."""

from __future__ import annotations

import json
import os
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from test_study_support import cli, png_size
from tiny_runs import TinyFolder

from actors.study import figures


@pytest.fixture(scope="module", params=["Sync", "Async"])
def log(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of 2 workers in 2 pool processes, a training pass and a test pass; small buffers."""
    folder = TinyFolder(tmp_path_factory.mktemp(f"traced-{request.param}"))
    run = folder.run(
        f"Parallel: 2\nWorkerBatch: 5\nDataChannelCapacity: 0\nOutputChannelCapacity: 1\n"
        f"Rounds: {request.param}\nTrain: 1\nTest: 1\n"
    )
    assert run.status == 0
    (path,) = (folder.folder / "logs").glob("*.jsonl")
    return path


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def log_slices(path: Path) -> list[dict]:
    return [piece for record in records(path) if record["event"] == "round" for piece in record["slices"]]


def traced(capsys: pytest.CaptureFixture[str], log: Path, out: Path, *options: str) -> list[dict]:
    code, printed, err = cli(capsys, "trace", log, "--out", out, *options)
    assert code == 0, err
    assert str(out) in printed.replace("\n", "")
    return json.loads(out.read_text())["traceEvents"]


def ns(value: float) -> int:
    return round(value * 1000)


def tracks(events: list[dict]) -> dict[tuple[int, int], list[dict]]:
    found: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for event in events:
        if event["ph"] == "X":
            found[(event["pid"], event["tid"])].append(event)
    return found


def test_slices_last_a_time_and_follow_each_other_on_every_track(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = traced(capsys, log, tmp_path / "trace.json")
    assert tracks(events)
    for slices in tracks(events).values():
        assert all(event["dur"] >= 0 for event in slices)
        starts = [event["ts"] for event in slices]
        assert starts == sorted(starts)


def test_slices_on_a_track_nest(log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = traced(capsys, log, tmp_path / "trace.json")
    nested = 0
    for track, slices in tracks(events).items():
        open_ends: list[int] = []  # the ends of the slices the next one may lie in
        for event in sorted(slices, key=lambda e: (ns(e["ts"]), -ns(e["dur"]))):
            began, ended = ns(event["ts"]), ns(event["ts"]) + ns(event["dur"])
            while open_ends and open_ends[-1] <= began:
                open_ends.pop()
            assert not open_ends or ended <= open_ends[-1], (track, event)
            nested += bool(open_ends)
            open_ends.append(ended)
    assert nested  # rounds in the pass, sends in rounds, blocked operations in waits


def test_every_slice_of_the_log_is_computed_once_in_a_pool_process(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = traced(capsys, log, tmp_path / "trace.json")
    run_pid = next(r["pid"] for r in records(log) if r["event"] == "run_start")
    computed = [e for e in events if e["ph"] == "X" and e["name"].startswith("compute ")]
    expected = Counter(f"{p['start']}–{p['stop']}" for p in log_slices(log))
    assert Counter(e["args"]["lines"] for e in computed) == expected
    assert len({e["pid"] for e in computed}) == 2 and run_pid not in {e["pid"] for e in computed}
    waits = [e for e in events if e["ph"] == "X" and e["name"] == "waiting for a slice"]
    assert len(waits) == sum(expected.values())


def test_each_flow_goes_from_send_to_step_to_report_to_merge(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = traced(capsys, log, tmp_path / "trace.json")
    flows: dict[int, list[dict]] = defaultdict(list)
    for event in events:
        if event["ph"] in "stf":
            flows[event["id"]].append(event)
    assert len(flows) == len(log_slices(log))
    run_pid = next(r["pid"] for r in records(log) if r["event"] == "run_start")
    for points in flows.values():
        assert [p["ph"] for p in points] == ["s", "t", "t", "f"]
        assert [p["ts"] for p in points] == sorted(p["ts"] for p in points)
        assert len({p["args"]["lines"] for p in points}) == 1
        assert points[1]["pid"] != run_pid  # the step, in its pool process
        assert points[3]["tid"] == 1 and points[3]["bp"] == "e"  # the merge, on the coordinator's track
        for point in points:  # each point lies in a slice of its track (in ns: sums of µs floats are inexact)
            assert any(
                ns(e["ts"]) <= ns(point["ts"]) <= ns(e["ts"]) + ns(e["dur"])
                for e in tracks(events)[(point["pid"], point["tid"])]
            )


def test_metadata_names_every_process_and_track(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = traced(capsys, log, tmp_path / "trace.json")
    processes = {e["pid"]: e["args"]["name"] for e in events if e["name"] == "process_name"}
    threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in events if e["name"] == "thread_name"}
    used = {(e["pid"], e["tid"]) for e in events if e["ph"] != "M"}
    assert used <= set(threads)
    assert {pid for pid, _ in used} <= set(processes)
    names = set(threads.values())
    assert {"coordinator", "worker 0", "worker 1"} <= names
    assert sum(name.startswith("pool process") for name in names) == 2


CHANNEL_COUNTERS = ("buffered", "waiting senders", "waiting receivers")


def test_counters_show_both_channels(log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = traced(capsys, log, tmp_path / "trace.json")
    counters = defaultdict(list)
    for event in events:
        if event["ph"] == "C" and event["name"].endswith(CHANNEL_COUNTERS):
            counters[event["name"]].append(event["args"]["count"])
    for channel in ("data", "output"):
        for name in ("buffered", "waiting senders", "waiting receivers"):
            values = counters[f"{channel} channel: {name}"]
            assert values and min(values) == 0
    assert max(counters["data channel: waiting receivers"]) >= 1  # workers wait for slices
    assert max(counters["data channel: buffered"]) == 0  # a rendezvous channel buffers nothing
    assert not [name for name in counters if name.startswith("context switches")]


def test_context_switches_become_counters_when_the_log_has_them(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = log.read_text().splitlines()
    first_end = next(i for i, line in enumerate(lines) if '"pass_end"' in line)
    pool = next(p["process"] for p in log_slices(log))
    switches = {
        "event": "context_switches", "index": 1,
        "processes": [{"pid": pool, "role": "pool", "voluntary": 12, "involuntary": 3, "migrations": 1}],
    }  # fmt: skip
    lines.insert(first_end, json.dumps(switches))
    switched = tmp_path / "switched.jsonl"
    switched.write_text("\n".join(lines) + "\n")
    events = traced(capsys, switched, tmp_path / "trace.json")
    counted = [e for e in events if e["ph"] == "C" and e["name"] == f"context switches: pool {pool}"]
    assert [e["args"] for e in counted] == [
        {"voluntary": 0, "involuntary": 0, "migrations": 0},
        {"voluntary": 12, "involuntary": 3, "migrations": 1},
    ]
    assert all(e["pid"] == pool for e in counted)


def test_a_window_of_rounds_keeps_only_their_slices(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = traced(capsys, log, tmp_path / "trace.json", "--rounds", "2:3", "--pass", "1")
    chosen = [
        piece for r in records(log) if r["event"] == "round" and r["index"] == 1 and 2 <= r["round"] <= 3
        for piece in r["slices"]
    ]  # fmt: skip
    computed = [e["args"]["lines"] for e in events if e["ph"] == "X" and e["name"].startswith("compute ")]
    assert sorted(computed) == sorted(f"{p['start']}–{p['stop']}" for p in chosen)
    assert {e["args"]["round"] for e in events if e["ph"] == "X" and "round" in e["args"]} == {2, 3}
    assert len({e["id"] for e in events if e["ph"] == "s"}) == len(chosen)


def test_png_of_a_window_is_written_at_its_size(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    picture = tmp_path / "timeline.png"
    traced(capsys, log, tmp_path / "trace.json", "--rounds", "1:4", "--png", picture)
    width, height = figures.WIDE
    assert png_size(picture) == (int(width * figures.DPI), int(height * figures.DPI))
    assert picture.stat().st_size > 10_000


def test_default_output_is_beside_the_newest_log(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = cli(capsys, "trace", "--log-dir", log.parent)
    assert code == 0
    out = log.with_name(log.name.removesuffix(".jsonl") + ".trace.json")
    assert json.loads(out.read_text())["traceEvents"]
    out.unlink()


def test_logs_shows_where_each_workers_time_went(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Compute (the steps in their processes) as a share of first send to last merge, from the raw log."""
    code, printed, _ = cli(capsys, "logs", log)
    assert code == 0
    assert "Workers' time" in printed
    rows = {}
    for line in printed.splitlines():
        cells = [cell.strip() for cell in line.strip("│ ").split("│")]
        if len(cells) == 6 and all(re.fullmatch(r"\d+(\.\d)?", cell) for cell in cells):
            rows[(int(cells[0]), int(cells[1]))] = [float(cell) for cell in cells[2:]]
    assert set(rows) == {(1, 0), (1, 1), (2, 0), (2, 1)}
    for shares in rows.values():
        assert sum(shares) == pytest.approx(100.0, abs=0.25)  # each cell is rounded to 0.1
    training = [r for r in records(log) if r["event"] == "round" and r["index"] == 1]
    pieces = [piece["at"] | {"worker": piece["worker"]} for r in training for piece in r["slices"]]
    span = max(p["merge_ended"] for p in pieces) - min(p["send_began"] for p in pieces)
    for worker in (0, 1):
        computing = sum(p["step_ended"] - p["step_began"] for p in pieces if p["worker"] == worker)
        assert rows[(1, worker)][0] == pytest.approx(100 * computing / span, abs=0.051)


def one_line_error(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> str:
    code, _, err = cli(capsys, *argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_no_log_in_the_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "no JSON logs" in one_line_error(capsys, "trace", "--log-dir", tmp_path)


def test_a_log_without_timestamps(log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A log of an older version: its rounds' slices have no moments."""
    old = tmp_path / "old.jsonl"
    lines = []
    for record in records(log):
        for piece in record["slices"] if record["event"] == "round" else ():
            for key in ("at", "process", "thread"):
                del piece[key]
        record.pop("clock_ns", None)
        lines.append(json.dumps(record))
    old.write_text("\n".join(lines) + "\n")
    err = one_line_error(capsys, "trace", old, "--out", tmp_path / "t.json")
    assert str(old) in err and "no timestamps" in err
    assert not (tmp_path / "t.json").exists()
    code, printed, _ = cli(capsys, "logs", old)  # logs still summarises it, without the breakdown
    assert code == 0 and "Workers' time" not in printed


@pytest.mark.parametrize("window", ["3", "5:2", "0:2", "a:b", "2:", ""])
def test_a_bad_window_of_rounds(
    window: str, log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = one_line_error(capsys, "trace", log, "--out", tmp_path / "t.json", "--rounds", window)
    assert "A:B" in err


def test_a_window_past_the_last_round(log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = one_line_error(capsys, "trace", log, "--out", tmp_path / "t.json", "--rounds", "90:99")
    last = max(r["round"] for r in records(log) if r["event"] == "round" and r["index"] == 1)
    assert "no round in 90:99" in err and f"pass 1 (train, epoch 1): rounds 1–{last}" in err


def test_an_output_that_is_a_directory_a_fifo_or_the_log(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for option, target in (("--out", tmp_path), ("--out", fifo), ("--out", log), ("--png", fifo)):
        extra = ("--out", tmp_path / "t.json") if option == "--png" else ()
        err = one_line_error(capsys, "trace", log, option, target, *extra)
        assert str(target) in err
    assert fifo.exists() and not (tmp_path / "t.json").exists()
    assert records(log)[0]["event"] == "run_start"  # the log is as it was
