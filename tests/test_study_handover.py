"""``python -m actors.study.handover``: the three ways to hand an item over, measured side by side."""

from __future__ import annotations

import pytest

from actors.study import handover


@pytest.mark.parametrize("kind", handover.KINDS)
def test_each_kind_carries_every_round_trip_and_takes_some_time(kind: str) -> None:
    seconds = handover.seconds_per_trip(kind, 200)
    assert 0 < seconds < 0.01


def test_the_table_has_a_row_per_kind_relative_to_the_queue(capsys: pytest.CaptureFixture[str]) -> None:
    assert handover.main(["--trips", "50", "--repeat", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[1:]] == list(handover.KINDS)
    assert lines[-1].endswith("1.00×")  # the queue against itself


def test_one_kind_alone_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert handover.main(["--kind", "channel", "--trips", "20"]) == 0
    assert capsys.readouterr().out == ""


def test_bad_arguments_are_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert handover.main(["--trips", "0"]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
