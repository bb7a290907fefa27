"""What a pass reports: one record per round, the totals at the end."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from actors.messages import Report
from actors.switches import PassSwitches
from actors.worker import WorkerTally
from brain.errors import DivergenceError
from channels import ChannelStats
from channels.stats import Interval


@dataclass(frozen=True)
class RoundRecord:
    """What happened in one round, for progress bars and logs."""

    round: int
    reports: tuple[Report, ...]
    merge_seconds: float
    lines_done: int
    correct: int
    seconds: float = 0.0  # wall time of the round, sending to last merge
    staleness: int = 0  # async rounds: merges into main while this report's step computed

    @property
    def overhead_seconds(self) -> float:
        """Time of the round not spent in its slowest numeric step: coordination, channels, merging."""
        return max(0.0, self.seconds - max((r.result.seconds for r in self.reports), default=0.0))


@dataclass
class PassOutcome:
    """The totals of a pass."""

    lines: int = 0
    rounds: int = 0
    correct: int = 0
    error_sum: float = 0.0
    seconds: float = 0.0
    merge_seconds: float = 0.0
    overhead_seconds: float = 0.0  # summed RoundRecord.overhead_seconds
    channels: tuple[ChannelStats, ...] = ()
    # Each channel's blocked sends and receives, by name (see Channel.blocked_intervals).
    blocked: dict[str, tuple[tuple[Interval, ...], tuple[Interval, ...]]] = field(default_factory=dict)
    workers: tuple[WorkerTally, ...] = field(default_factory=tuple)
    cursor: int = 0  # lines of the pass' order done, counting those done before a resume
    stopped: bool = False  # an interrupt stopped the pass at ``cursor``
    staleness_max: int = 0  # async rounds only
    staleness_mean: float = 0.0
    weights: np.ndarray | None = None  # training: main at the end (after the last whole round)
    switches: PassSwitches = field(default_factory=PassSwitches)  # context switches, see actors.switches


def check_finite(label: str, outcome: PassOutcome, report: Report) -> None:
    """Raise ``DivergenceError`` naming the pass, round and line if the report says so."""
    result = report.result
    if result.diverged_at >= 0:
        raise DivergenceError(
            f"training diverged in {label or 'the pass'}, round {outcome.rounds + 1}: "
            f"the output of line {report.slice.start + result.diverged_at + 1} of the pass "
            "was not finite",
            allowed="a smaller LearningRate, or weights closer to 0",
        )
