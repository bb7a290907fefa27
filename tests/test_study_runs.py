"""A study's runs: what it says about a data subset too small to measure."""

from __future__ import annotations

from pathlib import Path

from actors.study.data import StudyData
from actors.study.runs import RunSpec, subset_notes, write_batches


def specs(*workers: int) -> list[RunSpec]:
    """One single-epoch run per worker count, slices of 100 lines."""
    directives = {n: (("Parallel", str(n)), ("WorkerBatch", "100")) for n in workers}
    return [RunSpec(f"workers{n}", {"workers": n}, directives[n], 1) for n in workers]


def test_a_subset_of_a_few_rounds_gets_a_note_naming_what_would_do(tmp_path: Path) -> None:
    data = StudyData(tmp_path / "train.csv", tmp_path / "test.csv", 50, 50)
    notes = subset_notes(write_batches(specs(1, 8), data, tmp_path), data)
    assert notes == [
        "50 training lines are 1 round of 800 lines (Parallel × WorkerBatch) for the most workers: "
        "start-up and merges, not training, make the times; take --train-lines 8,000 or more",
        "50 test lines give accuracies in steps of 2 %; take --test-lines 1,000 or more",
    ]


def test_the_whole_data_set_gets_no_note(tmp_path: Path) -> None:
    data = StudyData(tmp_path / "train.csv", tmp_path / "test.csv", 60_000, 10_000)
    assert subset_notes(write_batches(specs(1, 2, 4, 8, 12, 16), data, tmp_path), data) == []
