"""``bench compare`` end to end on a small subset: our executors, PyTorch when it is installed."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from test_study_support import cli, png_size, read_rows

from actors.batchfile.parse import load_batch, parse_batch
from actors.study import compare as study
from actors.study import torch_baseline
from actors.study.data import StudyData
from actors.study.runs import batch_text
from brain.data.targets import Targets
from brain.errors import UserError
from brain.modern import Modern, Schedule, initial_weights, new_state, train_modern
from brain.modern.forward import matrices

SMALL = ("--train-lines", "300", "--test-lines", "200", "--repeat", "1", "--quiet")


def compare(capsys, mnist_dir: Path, out: Path, *options: str) -> tuple[int, str]:
    code, stdout, _ = cli(capsys, "bench", "compare", "--data", mnist_dir, "--out", out, *SMALL, *options)
    return code, stdout


def test_each_executor_and_worker_count_gets_a_row_and_the_modern_math_one(
    mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, stdout = compare(capsys, mnist_dir, tmp_path, "--executors", "inline,thread", "--parallel", "1,2",
                           "--no-torch", "--modern-epochs", "1")  # fmt: skip
    assert code == 0
    rows = read_rows(tmp_path / "compare.csv")
    assert set(rows[0]) >= {"implementation", "math", "executor", "workers", "epoch_seconds", "test_accuracy"}
    found = sorted((r["math"], r["executor"], r["workers"]) for r in rows)
    expected = [("modern", "inline", "1"), ("modern", "inline", "2")] + [
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
    options = (*SMALL, "--executors", "inline", "--parallel", "1", "--modern-epochs", "1")
    code, stdout, stderr = cli(capsys, "bench", "compare", "--data", mnist_dir, "--out", tmp_path, *options)
    assert code == 0
    assert "skipped: PyTorch not installed (pip install torch)" in " ".join(stdout.split())
    # The largest round is the modern run's: batch/modern.txt's WorkerBatch of 1,000.
    assert "note: 300 training lines are 1 round of 1,000 lines (Parallel × WorkerBatch)" in stderr
    assert {r["implementation"] for r in read_rows(tmp_path / "compare.csv")} == {"ours"}


def test_pytorch_trains_the_same_network_on_the_same_data(
    mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    code, _ = compare(
        capsys, mnist_dir, tmp_path, "--executors", "inline", "--parallel", "1", "--modern-epochs", "1"
    )
    assert code == 0
    torch_rows = [r for r in read_rows(tmp_path / "compare.csv") if r["implementation"] == "pytorch"]
    assert sorted(r["update"] for r in torch_rows) == ["minibatch", "online"]
    # 300 lines are enough for PyTorch's online SGD to beat chance (10 %) by far
    online = next(r for r in torch_rows if r["update"] == "online")
    assert float(online["test_accuracy"]) > 50.0


def test_the_modern_runs_train_as_batch_modern_txt_does(tmp_path: Path) -> None:
    data = StudyData(tmp_path / "train.csv", tmp_path / "test.csv", 10, 10)
    spec = next(s for s in study.specs(study.ComparePlan(parallel=(2,)), 1) if s.labels["math"] == "modern")
    ours = parse_batch(batch_text(spec, data, tmp_path / "net.txt"), tmp_path / "b.txt").passes[0].settings
    theirs = load_batch(Path(__file__).resolve().parent.parent / "batch" / "modern.txt").passes[0].settings
    where = {"network_file", "train_file", "test_file", "persistence_file", "result_file", "executor"}
    assert str(ours.executor).lower() == "process"
    for field in fields(ours):
        if field.name not in where:
            assert getattr(ours, field.name) == getattr(theirs, field.name), field.name


def run_rows(seconds: list[float], accuracies: list[float], **labels) -> list[dict]:
    return [
        {"epoch": e + 1, "epoch_seconds": s, "test_accuracy": a, **labels}
        for e, (s, a) in enumerate(zip(seconds, accuracies, strict=True))
    ]


def test_time_to_accuracy_sums_the_training_seconds_up_to_the_first_test_at_the_target() -> None:
    run = run_rows([0.5, 0.25, 0.5, 0.125], [96.0, 97.0, 96.5, 98.2])
    assert study.seconds_to(run, 97.0) == 0.75
    assert study.seconds_to(run, 98.0) == 1.375
    assert np.isnan(study.seconds_to(run, 99.0))
    identity = {"implementation": "ours", "math": "modern", "update": "minibatch", "executor": "process",
                "workers": 2}  # fmt: skip
    rows = (
        run_rows([0.5, 0.25, 0.5, 0.125], [96.0, 97.0, 96.5, 98.2], repetition=1, **identity)
        + run_rows([0.25, 0.25, 0.25, 0.25], [97.5, 97.0, 97.9, 97.9], repetition=2, **identity)
        + run_rows([1.0, 1.0, 1.0, 1.0], [97.0, 98.0, 98.0, 98.0], repetition=3, **identity)
    )
    (table,) = study.accuracy_rows(study.summarise(rows))
    # 97 %: 0.75, 0.25, 1.0 s; 98 %: 1.375 and 2.0 s, the second run never got there.
    assert table == ("ours", "process", "2", "4", "0.375 (0.125–1.000)", "0.75 (0.25–1.00)",
                     "1.69 (1.38–2.00) (2 of 3 runs)", "98.00 (97.90–98.20)")  # fmt: skip


def test_pytorch_starts_from_our_initial_weights_and_steps_as_our_momentum_does() -> None:
    torch = pytest.importorskip("torch")
    hyper = Modern(optimizer="momentum", learning_rate=0.3, lambda_l2=1e-4, minibatch=50, precision="float32",
                   elu_alpha=1.0)  # fmt: skip
    training = torch_baseline.TorchTraining(hyper, Schedule("cosine"), "He", 7)
    network = torch_baseline.model(training)
    w0 = initial_weights(torch_baseline.NETWORK, "he", 7)
    first = matrices(w0, torch_baseline.NETWORK)[0]
    np.testing.assert_array_equal(network[0].weight.detach().numpy(), first[:784].T.astype(np.float32))
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, (150, 784)).astype(np.uint8)
    labels = rng.integers(0, 10, 150)
    sgd, loss = torch_baseline.optimizer(network, hyper), torch.nn.CrossEntropyLoss()
    x, y = torch.from_numpy(torch_baseline.proportional(pixels)), torch.from_numpy(labels)
    for start in range(0, 150, 50):
        sgd.zero_grad()
        loss(network(x[start : start + 50]), y[start : start + 50]).backward()
        sgd.step()
    ours, targets = w0.copy(), Targets(labels=labels, direct=np.empty((0, 10)))
    state = new_state("momentum", len(ours))
    train_modern(
        ours, state, np.zeros(1, np.int64), torch_baseline.NETWORK, pixels, targets, np.arange(150), hyper
    )
    mats = matrices(ours, torch_baseline.NETWORK)
    for below, mine, linear in zip((784, 100), mats, (network[0], network[2]), strict=True):
        np.testing.assert_allclose(linear.weight.detach().numpy(), mine[:below].T, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(linear.bias.detach().numpy(), mine[below], rtol=1e-4, atol=1e-6)
    assert not np.allclose(ours, w0, rtol=1e-3)


def test_a_training_pytorch_cannot_follow_is_refused_before_any_run(
    mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(UserError, match="Optimizer: SGD, Momentum or Nesterov"):
        torch_baseline.TorchTraining(Modern(optimizer="adam"), Schedule(), "He", 1)
    pytest.importorskip("torch")
    code, _, stderr = cli(capsys, "bench", "compare", "--data", mnist_dir, "--out", tmp_path, *SMALL,
                          "--executors", "inline", "--parallel", "1", "--set", "Optimizer=Adam")  # fmt: skip
    assert code == 2
    assert "PyTorch cannot train as ours do" in stderr
    assert not (tmp_path / "compare.csv").exists()


def test_with_pytorch_the_summary_shows_the_time_to_accuracy_of_ours_and_pytorchs_runs(
    mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    code, _ = compare(capsys, mnist_dir, tmp_path, "--executors", "inline", "--parallel", "1,2",
                      "--modern-epochs", "2", "--epochs", "1", "--repeat", "2")  # fmt: skip
    assert code == 0
    rows = read_rows(tmp_path / "compare.csv")
    # Interleaved: every configuration's first run before any second run.
    repetitions = [int(r["repetition"]) for r in rows]
    assert repetitions == sorted(repetitions)
    minibatch = {
        (r["implementation"], r["executor"], r["workers"]) for r in rows if r["update"] == "minibatch"
    }
    assert minibatch == {("ours", "inline", "1"), ("ours", "inline", "2"), ("pytorch", "1 thread", "1")}
    summary = (tmp_path / "compare-summary.md").read_text(encoding="utf-8")
    accuracy = summary.split("Time to accuracy")[1].splitlines()
    assert (
        "| implementation | executor | workers | epochs | epoch (s) | to 97 % (s) | to 98 % (s) |"
        in accuracy[2]
    )
    assert [line.split(" | ")[:4] for line in accuracy[4:7]] == [
        ["| ours", "inline", "1", "2"],
        ["| ours", "inline", "2", "2"],
        ["| pytorch", "1 thread", "1", "2"],
    ]
