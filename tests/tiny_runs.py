"""Whole runs of a tiny network through the command line, and the thesis math to check them by.

A run here goes through the public surface only — a batch file, the CSV data, the
persistence file it starts from, the JSON log and the result table it leaves — so
that the tests built on it hold whatever the runtime's modules look like inside.
The expected numbers come from ``brain.reference`` (one sample at a time, as the
thesis' equations read) and plain numpy, never from the code under test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from brain_helpers import index_targets

from actors.cli import main as cli
from actors.records.results import read_results
from brain import reference
from brain.connectome import Connectome
from brain.data import Dataset, write_csv
from brain.hyper import Hyper
from brain.layout import Layout
from brain.persistence import Persisted, load_persistence, save_persistence

NETWORK = "Identity, 6\nELU, 5\nSoftMax, 3\n"
LAYOUT = Layout.of(("Identity", 6), ("ELU", 5), ("SoftMax", 3))
# Raw pixels reach 255/7 at the input layer: a small step keeps the tiny network from diverging.
LEARNING_RATE = 0.002
LAMBDA = 1e-4
HYPER = Hyper(learning_rate=LEARNING_RATE, lambda_=LAMBDA)
# The numba kernels add in another order than the reference: see tests/test_kernels.py.
RTOL = 1e-11


def tiny_data(lines: int, seed: int) -> Dataset:
    """``lines`` samples of 6 random pixels and a class 0..2, exactly representable in a CSV."""
    rng = np.random.default_rng(seed)
    inputs = rng.integers(0, 256, (lines, LAYOUT.n_inputs)).astype(np.uint8)
    labels = rng.integers(0, LAYOUT.n_outputs, (lines, 1)).astype(np.float64)
    return Dataset(inputs, labels, f"tiny[{seed}]")


def initial_weights(seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, LAYOUT.n_weights)


@dataclass(frozen=True)
class TinyRun:
    """What a run left behind: its exit status, its log, its result rows and the weights it saved."""

    status: int
    log: list[dict]
    rows: list[dict]
    weights: np.ndarray
    persisted: Persisted

    def events(self, name: str) -> list[dict]:
        return [record for record in self.log if record["event"] == name]

    def rounds(self, index: int = 1) -> list[dict]:
        """The ``round`` events of pass ``index``, in the order they were logged."""
        return [record for record in self.events("round") if record["index"] == index]


class TinyFolder:
    """A folder with the tiny network, a training and a test CSV, and a persistence file to start from."""

    def __init__(self, folder: Path, train_lines: int = 42, test_lines: int = 30) -> None:
        self.folder = folder
        self.train = tiny_data(train_lines, seed=1)
        self.test = tiny_data(test_lines, seed=2)
        write_csv(self.train, folder / "train.csv")
        write_csv(self.test, folder / "test.csv")
        (folder / "net.txt").write_text(NETWORK)
        self.start = Persisted(LAYOUT, initial_weights())
        save_persistence(folder / "weights.npz", self.start)

    def run(self, body: str, *options: str) -> TinyRun:
        """Run a batch of the thesis' math on this folder; ``body`` holds its passes and settings."""
        batch = self.folder / "batch.txt"
        batch.write_text(
            "NetworkFile: net.txt\nTrainFile: train.csv\nTestFile: test.csv\n"
            "PersistenceFile: weights.npz\nResultFile: results.csv\n"
            f"LearningRate: {LEARNING_RATE}\nLambda: {LAMBDA}\n{body}"
        )
        logs = self.folder / "logs"
        for old in logs.glob("*.jsonl"):
            old.unlink()
        status = cli(["run", str(batch), "--quiet", "--log-dir", str(logs), *options])
        log = [
            json.loads(line)
            for path in sorted(logs.glob("*.jsonl"))
            for line in path.read_text().splitlines()
        ]
        results = self.folder / "results.csv"
        rows = read_results(results) if results.exists() else []
        persisted = load_persistence(self.folder / "weights.npz")
        return TinyRun(status, log, rows, persisted.weights, persisted)


def trained(weights: np.ndarray, data: Dataset, rows) -> np.ndarray:
    """``weights`` after the thesis' online training on ``data``'s lines ``rows``, in that order."""
    net = Connectome(LAYOUT, np.array(weights, dtype=np.float64))
    targets = index_targets(data.targets[:, 0].astype(np.int64), LAYOUT.n_outputs)
    reference.train_rows(net, data.inputs, targets, rows, HYPER)
    return net.weights


def scored(weights: np.ndarray, data: Dataset) -> tuple[int, float]:
    """(correct, Σ 0.5·(t−y)²) of ``weights`` over every line of ``data``."""
    net = Connectome(LAYOUT, np.array(weights, dtype=np.float64))
    targets = index_targets(data.targets[:, 0].astype(np.int64), LAYOUT.n_outputs)
    return reference.test_rows(net, data.inputs, targets, range(len(data)), HYPER)


def assert_weights(actual: np.ndarray, expected: np.ndarray) -> None:
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=RTOL * np.abs(expected).max())
