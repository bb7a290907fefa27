"""``bench compare`` end to end on a small subset: our executors, PyTorch when it is installed."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_study_support import cli, png_size, read_rows

from actors.study import torch_baseline

SMALL = ("--train-lines", "300", "--test-lines", "200", "--repeat", "1", "--quiet")


def compare(capsys, mnist_dir: Path, out: Path, *options: str) -> tuple[int, str]:
    code, stdout, _ = cli(capsys, "bench", "compare", "--data", mnist_dir, "--out", out, *SMALL, *options)
    return code, stdout


def test_each_executor_and_worker_count_gets_a_row_and_the_modern_math_one(
    mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, stdout = compare(capsys, mnist_dir, tmp_path, "--executors", "inline,thread", "--parallel", "1,2",
                           "--no-torch")  # fmt: skip
    assert code == 0
    rows = read_rows(tmp_path / "compare.csv")
    assert set(rows[0]) >= {"implementation", "math", "executor", "workers", "epoch_seconds", "test_accuracy"}
    found = sorted((r["math"], r["executor"], r["workers"]) for r in rows)
    expected = [("modern", "inline", "1")] + [
        ("thesis", executor, workers) for executor in ("inline", "thread") for workers in ("1", "2")
    ]
    assert found == sorted(expected)
    assert all(r["implementation"] == "ours" and float(r["epoch_seconds"]) > 0 for r in rows)
    assert "PyTorch left out" in stdout
    assert png_size(tmp_path / "compare.png") == (1200, 500)


def test_without_pytorch_the_comparison_says_how_to_get_it(
    mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch_baseline, "available", lambda: False)
    code, stdout, stderr = cli(capsys, "bench", "compare", "--data", mnist_dir, "--out", tmp_path, *SMALL,
                               "--executors", "inline", "--parallel", "1")  # fmt: skip
    assert code == 0
    assert "skipped: PyTorch not installed (pip install torch)" in " ".join(stdout.split())
    assert "note: 300 training lines are 3 rounds of 100 lines (Parallel × WorkerBatch)" in stderr
    assert {r["implementation"] for r in read_rows(tmp_path / "compare.csv")} == {"ours"}


def test_pytorch_trains_the_same_network_on_the_same_data(
    mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    code, _ = compare(capsys, mnist_dir, tmp_path, "--executors", "inline", "--parallel", "1")
    assert code == 0
    torch_rows = [r for r in read_rows(tmp_path / "compare.csv") if r["implementation"] == "pytorch"]
    assert sorted(r["update"] for r in torch_rows) == ["minibatch", "online"]
    # 300 lines are enough for PyTorch's online SGD to beat chance (10 %) by far
    online = next(r for r in torch_rows if r["update"] == "online")
    assert float(online["test_accuracy"]) > 50.0
