"""``bench channels`` end to end on a small subset: one row per configuration, the channels' numbers."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_study_support import png_size, read_rows

from actors.study.channels import ChannelPlan, capacity_value, parse_capacities

PARALLEL = 2
TRAIN_LINES = 400  # four slices of 100


@pytest.fixture(scope="module")
def study(mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from actors.cli import main

    out = tmp_path_factory.mktemp("channels")
    options = ["--parallel", str(PARALLEL), "--capacities", "0,unbounded", "--executors", "thread"]
    options += ["--rounds", "Sync,Async", "--train-lines", str(TRAIN_LINES), "--test-lines", "200"]
    assert main(["bench", "channels", *options, "--data", str(mnist_dir), "--out", str(out), "--quiet"]) == 0
    return out


def test_one_row_per_rounds_and_capacity_pair(study: Path) -> None:
    rows = read_rows(study / "channels.csv")
    configurations = sorted((r["rounds"], r["data_capacity"], r["output_capacity"]) for r in rows)
    assert configurations == sorted(
        (rounds, data, output) for rounds in ("Sync", "Async") for data in ("0", "unbounded")
        for output in ("0", "unbounded")
    )  # fmt: skip


def test_every_slice_goes_through_the_data_channel_once(study: Path) -> None:
    for row in read_rows(study / "channels.csv"):
        assert int(row["data_sent"]) == TRAIN_LINES // 100
        assert int(row["output_sent"]) == TRAIN_LINES // 100


def test_sync_rounds_take_parallel_slices_each_and_async_merges_one_report_at_a_time(study: Path) -> None:
    for row in read_rows(study / "channels.csv"):
        expected = TRAIN_LINES // 100 // PARALLEL if row["rounds"] == "Sync" else TRAIN_LINES // 100
        assert int(row["round_count"]) == expected


def test_a_rendezvous_channel_never_buffers_and_sync_merges_are_never_stale(study: Path) -> None:
    for row in read_rows(study / "channels.csv"):
        if row["data_capacity"] == "0":
            assert int(row["data_high_water"]) == 0
        if row["output_capacity"] == "0":
            assert int(row["output_high_water"]) == 0
        if row["rounds"] == "Sync":
            assert float(row["staleness_mean"]) == 0.0
        if row["data_capacity"] == "unbounded":  # never full, so no send ever waits
            assert int(row["data_blocked_sends"]) == 0


def test_context_switches_per_round_are_the_pass_counts_over_its_rounds(study: Path) -> None:
    rows = read_rows(study / "channels.csv")
    for row in rows:
        rounds = int(row["round_count"])
        voluntary, involuntary = float(row["voluntary_switches"]), float(row["involuntary_switches"])
        assert float(row["switches_per_round"]) == pytest.approx((voluntary + involuntary) / rounds)
        assert float(row["task_resumptions_per_round"]) == pytest.approx(
            int(row["task_resumptions"]) / rounds
        )
        assert voluntary >= float(row["coordinator_voluntary_switches"]) >= 0
        blocked = sum(
            int(row[f"{c}_blocked_{side}s"]) for c in ("data", "output") for side in ("send", "receive")
        )
        assert float(row["blocked_operations_per_round"]) == pytest.approx(blocked / rounds)
        assert int(row["task_resumptions"]) >= blocked  # a task that waited was resumed
    sync = {(r["data_capacity"], r["output_capacity"]): r for r in rows if r["rounds"] == "Sync"}
    # At a rendezvous every hand-over makes one side wait; with unbounded buffers at most the receiver.
    rendezvous, unbounded = sync["0", "0"], sync["unbounded", "unbounded"]
    assert float(rendezvous["blocked_operations_per_round"]) >= float(
        unbounded["blocked_operations_per_round"]
    )


def test_figures_have_a_panel_per_rounds_and_executor(study: Path) -> None:
    for name in ("channels-time.png", "channels-overhead.png", "channels-blocked.png"):
        assert png_size(study / name) == (600, 1000)  # 600 × 500 per panel: 2 rounds × 1 executor
    for name in ("channels-switches.png", "channels-task-switches.png"):
        assert png_size(study / name) == (600, 1000)
    assert png_size(study / "channels-staleness.png") == (600, 500)  # Async only


def test_capacities_name_parallel_and_its_double() -> None:
    tokens = parse_capacities("0, 1,p,2P ,unbounded")
    assert [capacity_value(t, 3) for t in tokens] == [0, 1, 3, 6, float("inf")]
    with pytest.raises(ValueError):
        parse_capacities("0,many")


def test_same_grid_pairs_equal_capacities_and_drops_duplicates() -> None:
    plan = ChannelPlan(parallel=1, capacities=("0", "1", "P"), grid="same")
    assert plan.pairs() == [(0, 0), (1, 1)]
    assert len(ChannelPlan(parallel=4).pairs()) == 25
