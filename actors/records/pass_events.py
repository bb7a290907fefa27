"""What the JSON log records of a pass: its start, each round, its channels and workers, its end.

One function per event, so that the names and fields of the log (the README's table
of log events) are written in one place.  Moments (``actors.messages.Moments``) are written
as nanoseconds after the pass' ``clock_ns``, a reading of ``actors.clock.now`` taken
when the pass starts.
"""

from __future__ import annotations

from typing import Any

from actors.batchfile.parse import Pass
from actors.messages import Report
from actors.outcome import PassOutcome, RoundRecord
from actors.records.journal import Journal
from actors.records.results import ResultRow
from actors.setup_time import process_age
from actors.switches import COORDINATOR
from actors.workspace import Prepared
from brain.layout import Layout


def pass_start(
    journal: Journal, batch_pass: Pass, index: int, repetition: int, epoch: int, layout: Layout,
    prepared: Prepared, setup_parts: dict[str, float], network_from: str, clock_ns: int,
) -> None:  # fmt: skip
    settings, plan = batch_pass.settings, prepared.plan
    training = batch_pass.mode == "train"
    journal.event(
        "pass_start", index=index, repetition=repetition, mode=batch_pass.mode, epoch=epoch,
        where=f"{batch_pass.where}:{batch_pass.line}",
        data=str(settings.train_file if training else settings.test_file), lines=plan.lines,
        layout=layout.describe(), parallel=settings.parallel, worker_batch=settings.worker_batch,
        executor=prepared.executor.name, data_capacity=plan.data_capacity,
        output_capacity=plan.output_capacity, learning_rate=settings.learning_rate, lambda_=settings.lambda_,
        preprocessing=settings.preprocessing.name, seed=settings.seed,
        semantics=settings.semantics.recorded, learning_rate_now=prepared.learning_rate, merge=settings.merge,
        rounds=settings.rounds, setup_seconds=sum(setup_parts.values()), setup_parts=setup_parts,
        process_seconds=process_age(), start_line=plan.start_line, network_from=network_from,
        clock_ns=clock_ns,
    )  # fmt: skip


class RoundLog:
    """A ``round`` event per round of pass ``index``, with every slice of it and when it went where.

    A round is written when the next one has been recorded, the last one by ``close``
    (use it as a context manager around the pass): the worker of a round's last report
    stamps its send only after the coordinator has taken the report and run on.
    """

    def __init__(self, journal: Journal, index: int, clock_ns: int) -> None:
        self.journal = journal
        self.index = index
        self.clock_ns = clock_ns
        self._pending: RoundRecord | None = None

    def __enter__(self) -> RoundLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __call__(self, record: RoundRecord) -> None:
        if not self.journal.enabled:  # a round event costs 10-25 µs to build, even to drop
            return
        self.close()
        self._pending = record

    def close(self) -> None:
        """Write the round still held back, if any."""
        record, self._pending = self._pending, None
        if record is None:
            return
        self.journal.event(
            "round", index=self.index, round=record.round, lines_done=record.lines_done,
            seconds=record.seconds, overhead_seconds=record.overhead_seconds, staleness=record.staleness,
            merge_seconds=record.merge_seconds,
            slices=[_slice(report, self.clock_ns) for report in record.reports],
        )  # fmt: skip


def _slice(report: Report, clock_ns: int) -> dict[str, Any]:
    result = report.result
    at = report.slice.moments.since(clock_ns)
    at["step_began"] = result.began - clock_ns if result.began else None
    at["step_ended"] = result.ended - clock_ns if result.ended else None
    return {
        "worker": report.worker, "start": report.slice.start, "stop": report.slice.stop,
        "compute_seconds": result.seconds, "waited_for_slice": report.waited_for_slice,
        "process": result.process or None, "thread": result.thread or None, "at": at,
    }  # fmt: skip


def pass_statistics(journal: Journal, index: int, outcome: PassOutcome, clock_ns: int) -> None:
    """A ``channel_stats`` event per channel, a ``worker_stats`` event per worker, and the
    ``context_switches`` events."""
    for stats in outcome.channels:
        fields = stats.as_dict()
        sends, receives = outcome.blocked.get(stats.name, ((), ()))
        journal.event(
            "channel_stats", index=index, channel=fields.pop("name"), **fields,
            blocked_sends_at=[[who, began - clock_ns, ended - clock_ns] for who, began, ended in sends],
            blocked_receives_at=[[who, began - clock_ns, ended - clock_ns] for who, began, ended in receives],
        )  # fmt: skip
    for tally in outcome.workers:
        journal.event("worker_stats", index=index, **tally.as_dict())
    context_switches(journal, index, outcome)


def context_switches(journal: Journal, index: int, outcome: PassOutcome) -> None:
    """A ``context_switches`` event per process of the pass (``actors.switches``).

    The kernel's counts in every one; the coordinator's also holds its event loop's:
    the actor tasks' resumptions (in all and by task) and the channel operations that
    blocked.
    """
    switches = outcome.switches
    blocked = sum(stats.blocked_sends + stats.blocked_receives for stats in outcome.channels)
    for process in switches.processes:
        loop = {}
        if process.process == COORDINATOR:
            loop = {"task_resumptions": switches.task_resumptions, "tasks": switches.tasks,
                    "blocked_operations": blocked}  # fmt: skip
        journal.event("context_switches", index=index, **process.as_dict(), **loop)


def pass_end(
    journal: Journal, batch_pass: Pass, index: int, repetition: int, epoch: int, outcome: PassOutcome,
    row: ResultRow,
) -> None:  # fmt: skip
    journal.event(
        "pass_end", index=index, repetition=repetition, mode=batch_pass.mode, epoch=epoch,
        seconds=outcome.seconds, lines=outcome.lines, rounds=outcome.rounds,
        merge_seconds=outcome.merge_seconds, overhead_seconds=outcome.overhead_seconds,
        staleness_max=outcome.staleness_max, staleness_mean=outcome.staleness_mean,
        correct=row.correct, incorrect=row.incorrect,
        correct_percent=row.correct_percent, error_rate=row.error_rate,
        compute_seconds=sum(t.computing for t in outcome.workers),
    )  # fmt: skip
