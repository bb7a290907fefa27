"""What travels through the channels of a pass: slices out to the workers, reports back."""

from __future__ import annotations

from dataclasses import dataclass, field

from actors.moments import Moments


@dataclass(frozen=True, slots=True)
class Slice:
    """Lines ``[start, stop)`` of the pass' order, handed to one worker in round ``round`` (from 1)."""

    round: int
    start: int
    stop: int
    moments: Moments = field(default_factory=Moments, compare=False, repr=False)

    def __len__(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True, slots=True)
class StepResult:
    """What the numeric step of one slice returns (small: it crosses process boundaries).

    ``diverged_at`` is -1, or the position in the slice of the first sample whose
    output was not finite.  ``began`` and ``ended`` are the step's moments on
    ``actors.clock.now``, ``process`` and ``thread`` where it ran (0: not known, e.g.
    a step on another machine).
    """

    correct: int = 0
    error_sum: float = 0.0
    diverged_at: int = -1
    seconds: float = 0.0
    began: int = 0
    ended: int = 0
    process: int = 0
    thread: int = 0

    def __reduce__(self) -> tuple[type[StepResult], tuple]:
        # Pickled as a plain tuple: the dataclass' own state methods cost more than the step's pipe hop.
        return (StepResult, (self.correct, self.error_sum, self.diverged_at, self.seconds,
                             self.began, self.ended, self.process, self.thread))  # fmt: skip


@dataclass(frozen=True, slots=True)
class Report:
    """A worker's report on the output channel: its id (as in Go) and what it measured."""

    worker: int
    slice: Slice
    result: StepResult
    waited_for_slice: float
    started_after: int = -1  # async rounds: merges into main before this step began
