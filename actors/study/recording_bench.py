"""What recording a pass costs the event loop: a slice's moments, and a round event in a real journal.

``python -m actors.study.recording_bench [--parallel 2] [--rounds 300] [--repeat 7]``
prints the CPU time (``time.process_time``: this process alone, so other work on the
machine hardly moves it) of stamping one slice and of writing one round event of
``--parallel`` slices, medians of ``--repeat``, and what they add up to for an
epoch of ``--rounds`` rounds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable

from actors.clock import now
from actors.messages import MOMENTS, Report, Slice, StepResult
from actors.outcome import RoundRecord
from actors.records.journal import Journal
from actors.records.pass_events import RoundLog


def stamped_slice(number: int, start: int) -> Slice:
    """A slice whose every moment has been stamped, as the actors do it."""
    piece = Slice(number, start, start + 100)
    for name in MOMENTS:
        setattr(piece.moments, name, now())
    return piece


def round_record(number: int, parallel: int) -> RoundRecord:
    reports = tuple(
        Report(worker, stamped_slice(number, 100 * (parallel * number + worker)),
               StepResult(90, 1.5, -1, 0.0017, now(), now(), 1234, 1234), 0.0001)
        for worker in range(parallel)
    )  # fmt: skip
    return RoundRecord(number, reports, 0.0002, 100 * parallel * number, 90 * number, 0.0028)


def cpu_seconds(work: Callable[[], object], repeat: int) -> float:
    """The median CPU time of ``work()`` over ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        began = time.process_time()
        work()
        times.append(time.process_time() - began)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    stamps = cpu_seconds(lambda: [stamped_slice(1, 0) for _ in range(10_000)], args.repeat) / 10_000
    records = [round_record(number, args.parallel) for number in range(1, args.rounds + 1)]
    with tempfile.TemporaryDirectory() as folder:
        journal = Journal(folder)

        def log_all() -> None:
            with RoundLog(journal, 1, now()) as log:
                for record in records:
                    log(record)

        event = cpu_seconds(log_all, args.repeat) / args.rounds
        journal.close()
    slices = args.rounds * args.parallel
    with_log, without = 1e3 * (slices * stamps + args.rounds * event), 1e3 * slices * stamps
    print(f"a slice's moments: {stamps * 1e6:.1f} µs", end="; ")
    print(f"a round event of {args.parallel} slices: {event * 1e6:.1f} µs")
    print(f"{args.rounds} rounds, {slices} slices: {with_log:.1f} ms with the log", end=", ")
    print(f"{without:.1f} ms with --no-log")


if __name__ == "__main__":
    main()
