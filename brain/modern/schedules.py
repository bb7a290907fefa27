"""Learning-rate schedules: the rate of an epoch from its number and the test errors so far.

Pure functions of ``(epoch, history)``: ``epoch`` counts the training epochs
completed before this one (0 for the first), ``history`` holds one test error per
completed epoch, oldest first (any lower-is-better figure, e.g. the percentage
incorrect).  Nothing is kept between calls, so a run resumed from its persistence
file gets the same rates.

| schedule | rate of epoch e |
| --- | --- |
| Constant | base |
| Step | base · factor^⌊e / every⌋ |
| Cosine | base · ½(1 + cos(π·min(e, T−1)/T)) over T = ``epochs`` epochs, then held at its last value |
| Plateau | base · factor^r, r = reductions so far (see ``plateau_reductions``) |
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from brain.vocabulary import Vocabulary


class ScheduleKind(Vocabulary):
    """The rule of a ``Schedule`` (the table above)."""

    CONSTANT = "Constant"
    STEP = "Step"
    COSINE = "Cosine"
    PLATEAU = "Plateau"


@dataclass(frozen=True)
class Schedule:
    """A schedule and its parameters (each used by one schedule only).

    ``kind`` is a ``ScheduleKind`` or its name in any letter case; the member is kept.
    """

    kind: ScheduleKind = ScheduleKind.CONSTANT
    step_every: int = 3
    step_factor: float = 0.5
    cosine_epochs: int = 10
    plateau_patience: int = 2
    plateau_factor: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ScheduleKind(self.kind))
        if min(self.step_every, self.cosine_epochs, self.plateau_patience) < 1:
            raise ValueError("step_every, cosine_epochs and plateau_patience must be ≥ 1")
        if not (0 < self.step_factor <= 1 and 0 < self.plateau_factor <= 1):
            raise ValueError("step_factor and plateau_factor must be in (0, 1]")

    def rate(self, base_lr: float, epoch: int, history: Sequence[float] = ()) -> float:
        """The learning rate of epoch ``epoch`` (0-based)."""
        if self.kind is ScheduleKind.CONSTANT:
            return base_lr
        if self.kind is ScheduleKind.STEP:
            return base_lr * self.step_factor ** (epoch // self.step_every)
        if self.kind is ScheduleKind.COSINE:
            e = min(epoch, self.cosine_epochs - 1)
            return base_lr * 0.5 * (1.0 + math.cos(math.pi * e / self.cosine_epochs))
        return base_lr * self.plateau_factor ** plateau_reductions(history, self.plateau_patience)


def plateau_reductions(history: Sequence[float], patience: int) -> int:
    """How many times a reduce-on-plateau schedule has cut the rate after ``history``.

    Replaying the history: each ``patience`` errors in a row that do not beat the best
    so far make one reduction and restart the count.
    """
    best, waiting, reductions = math.inf, 0, 0
    for error in history:
        if error < best:
            best, waiting = error, 0
            continue
        waiting += 1
        if waiting >= patience:
            reductions, waiting = reductions + 1, 0
    return reductions


def learning_rate_at(
    schedule: Schedule | ScheduleKind | str,
    base_lr: float,
    epoch: int,
    history: Sequence[float] = (),
    **params,
) -> float:
    """The rate of epoch ``epoch``: ``schedule`` is a ``Schedule``, or a kind or its name with its parameters.

    ``learning_rate_at("step", 0.1, 4, step_every=2, step_factor=0.5)`` is 0.025.
    """
    if isinstance(schedule, str):
        schedule = Schedule(schedule, **params)
    elif params:
        raise TypeError("parameters go into the Schedule, not beside it")
    return schedule.rate(base_lr, epoch, history)
