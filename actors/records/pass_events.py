"""What the JSON log records of a pass: its start, each round, its channels and workers, its end.

One function per event, so that the names and fields of the log (the README's table
of log events) are written in one place.
"""

from __future__ import annotations

from collections.abc import Callable

from actors.batchfile.parse import Pass
from actors.outcome import PassOutcome, RoundRecord
from actors.records.journal import Journal
from actors.records.results import ResultRow
from actors.setup_time import process_age
from actors.switches import COORDINATOR
from actors.workspace import Prepared
from brain.layout import Layout


def pass_start(
    journal: Journal, batch_pass: Pass, index: int, repetition: int, epoch: int, layout: Layout,
    prepared: Prepared, setup_parts: dict[str, float], network_from: str,
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
    )  # fmt: skip


def round_logger(journal: Journal, index: int) -> Callable[[RoundRecord], None]:
    """A ``round`` event per round of pass ``index``, with every slice of it."""

    def log_round(record: RoundRecord) -> None:
        if not journal.enabled:  # a round event costs 10-25 µs to build, even to drop
            return
        journal.event(
            "round", index=index, round=record.round, lines_done=record.lines_done,
            seconds=record.seconds, overhead_seconds=record.overhead_seconds, staleness=record.staleness,
            merge_seconds=record.merge_seconds,
            slices=[
                {"worker": r.worker, "start": r.slice.start, "stop": r.slice.stop,
                 "compute_seconds": r.result.seconds, "waited_for_slice": r.waited_for_slice}
                for r in record.reports
            ],
        )  # fmt: skip

    return log_round


def pass_statistics(journal: Journal, index: int, outcome: PassOutcome) -> None:
    """A ``channel_stats`` event per channel, a ``worker_stats`` event per worker, and the
    ``context_switches`` events."""
    for stats in outcome.channels:
        fields = stats.as_dict()
        journal.event("channel_stats", index=index, channel=fields.pop("name"), **fields)
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
