"""run --set: directives applied before every pass, over the file's, checked like the file."""

from __future__ import annotations

import pytest

from actors.batchfile.parse import BatchError, parse_batch

TEXT = """NetworkFile: net.txt
TrainFile: train.csv
TestFile: test.csv
Parallel: 4
Train: 1
Parallel: 3
Test: 1
"""


def test_a_set_wins_over_every_setting_of_the_file(tmp_path):
    batch = parse_batch(TEXT, tmp_path / "b.txt", ["Parallel=2", "Merge: Mean"])
    assert [p.settings.parallel for p in batch.passes] == [2, 2]
    assert {p.settings.merge for p in batch.passes} == {"Mean"}


@pytest.mark.parametrize(
    ("setting", "address"),
    [("RayAddress=10.0.0.1:6379", "10.0.0.1:6379"), ("RayAddress: head:6379", "head:6379")],
)
def test_a_set_value_may_hold_a_colon(tmp_path, setting, address):
    batch = parse_batch(TEXT, tmp_path / "b.txt", [setting])
    assert {p.settings.ray_address for p in batch.passes} == {address}


def test_without_sets_the_file_decides(tmp_path):
    batch = parse_batch(TEXT, tmp_path / "b.txt")
    assert [p.settings.parallel for p in batch.passes] == [4, 3]


@pytest.mark.parametrize(
    ("setting", "message"),
    [("Paralel=2", "did you mean 'Parallel'"), ("WorkerBatch=0", "WorkerBatch: 0 is below 1"),
     ("Train=3", "--set cannot add a Train pass")],
)  # fmt: skip
def test_a_bad_set_is_one_error_naming_set(tmp_path, setting, message):
    with pytest.raises(BatchError) as caught:
        parse_batch(TEXT, tmp_path / "b.txt", [setting])
    lines = str(caught.value).splitlines()
    assert len(lines) == 1, lines  # once, not once per pass
    assert lines[0].startswith("--set: ") and message in lines[0]


def test_the_log_records_the_command_lines_overrides(tmp_path):
    from tiny_runs import TinyFolder

    run = TinyFolder(tmp_path).run("Executor: inline\nTrain: 1\n", "--parallel", "2", "--set", "Seed=7")
    assert run.status == 0
    (start,) = run.events("run_start")
    assert start["overrides"] == ["Parallel: 2", "Seed=7"]
    (pass_start,) = run.events("pass_start")
    assert (pass_start["parallel"], pass_start["seed"]) == (2, 7)
