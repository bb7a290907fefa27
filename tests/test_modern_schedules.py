"""Learning-rate schedules: the rate of each epoch, worked out by hand."""

from __future__ import annotations

import math

import pytest

from brain.modern import Schedule, learning_rate_at
from brain.modern.schedules import plateau_reductions


def test_constant_keeps_the_base_rate():
    assert [learning_rate_at("constant", 0.3, e, [9.0] * e) for e in range(4)] == [0.3] * 4


def test_step_cuts_every_few_epochs():
    rates = [learning_rate_at("step", 0.8, e, step_every=2, step_factor=0.5) for e in range(6)]
    assert rates == [0.8, 0.8, 0.4, 0.4, 0.2, 0.2]


def test_cosine_falls_from_the_base_rate_and_then_holds():
    schedule = Schedule("Cosine", cosine_epochs=10)
    assert schedule.rate(0.2, 0) == 0.2
    assert schedule.rate(0.2, 5) == pytest.approx(0.1, rel=1e-15)  # cos(π/2) = 0
    last = 0.2 * 0.5 * (1 + math.cos(0.9 * math.pi))  # ≈ 0.00489
    assert schedule.rate(0.2, 9) == pytest.approx(last, rel=1e-15)
    assert schedule.rate(0.2, 10) == schedule.rate(0.2, 25) == schedule.rate(0.2, 9)
    rates = [schedule.rate(1.0, e) for e in range(10)]
    assert rates == sorted(rates, reverse=True)


def test_plateau_cuts_after_patience_epochs_without_a_new_best():
    history = [5.0, 4.0, 4.5, 4.2, 3.9, 4.0, 4.0]
    # best 5 -> best 4 -> wait 1 -> wait 2: cut 1 -> best 3.9 -> wait 1 -> wait 2: cut 2
    assert [plateau_reductions(history[:n], 2) for n in range(8)] == [0, 0, 0, 0, 1, 1, 1, 2]
    assert learning_rate_at("plateau", 0.1, 7, history, plateau_patience=2, plateau_factor=0.5) == 0.025
    assert plateau_reductions([3.0, 3.0, 3.0], 1) == 2  # an equal error is no improvement


def test_plateau_depends_on_the_history_alone():
    schedule = Schedule("plateau", plateau_patience=1, plateau_factor=0.1)
    assert schedule.rate(1.0, 0, []) == 1.0
    assert schedule.rate(1.0, 99, [2.0, 1.0]) == 1.0
    assert schedule.rate(1.0, 2, [2.0, 2.5]) == pytest.approx(0.1)


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "exponential"},
        {"step_every": 0},
        {"cosine_epochs": 0},
        {"plateau_patience": 0},
        {"step_factor": 0.0},
        {"plateau_factor": 1.5},
    ],
)
def test_bad_schedules_are_refused(bad):
    with pytest.raises(ValueError):
        Schedule(**bad)


def test_parameters_go_into_the_schedule_not_beside_it():
    with pytest.raises(TypeError):
        learning_rate_at(Schedule("step"), 0.1, 0, step_every=2)
