"""``python -m actors.study.kernel_bench``: the kernels alone, one process, on MNIST.

The thesis' benchmark network:

784-100-10 (Identity / ELU / SoftMax), LearningRate 0.8, Lambda 1e-7, weights ±0.1,
one training epoch over the 60,000 shuffled training images (online SGD, thesis
math) and one test pass over the 10,000 test images, repeated; prints the median
and range of each figure, and with ``--json`` one JSON object on the last line.
Fetch the data first: ``python -m actors data fetch``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from brain import kernels
from brain.connectome import Connectome
from brain.data import interpret_targets, load_dataset
from brain.errors import UserError
from brain.hyper import Hyper
from brain.layout import Layout

THESIS_LAYOUT = Layout.of(("Identity", 784), ("ELU", 100), ("SoftMax", 10))
THESIS_HYPER = Hyper(learning_rate=0.8, lambda_=1e-7)
DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "data" / "mnist"


def measure(data: Path, repeat: int, seed: int = 42) -> dict:
    """Train and test ``repeat`` times from the same initial weights; every figure per run."""
    train = load_dataset(data / "train-images-idx3-ubyte.gz")
    test = load_dataset(data / "t10k-images-idx3-ubyte.gz")
    train_targets = interpret_targets(train, 10)
    test_targets = interpret_targets(test, 10)
    order = np.random.default_rng([seed, 1]).permutation(len(train))
    every = np.arange(len(test))
    initial = Connectome.uniform(THESIS_LAYOUT, -0.1, 0.1, seed)
    warm = initial.copy()  # compile (or load from the cache) before timing
    kernels.train(warm, train.inputs, train_targets, order[:10], THESIS_HYPER)
    kernels.test(warm, test.inputs, test_targets, every[:10], THESIS_HYPER)
    runs = []
    for _ in range(repeat):
        net = initial.copy()
        began = time.perf_counter()
        kernels.train(net, train.inputs, train_targets, order, THESIS_HYPER)
        trained = time.perf_counter()
        correct, error_sum = kernels.test(net, test.inputs, test_targets, every, THESIS_HYPER)
        tested = time.perf_counter()
        runs.append(
            {
                "train_seconds": trained - began,
                "test_seconds": tested - trained,
                "test_accuracy": 100.0 * correct / len(test),
                "error_rate": 100.0 * error_sum / len(test),
            }
        )
    return {"runs": runs, **{key: statistics.median(run[key] for run in runs) for key in runs[0]}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m actors.study.kernel_bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of the MNIST .gz files")
    parser.add_argument("--repeat", type=int, default=5, help="runs (the median is reported)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    args = parser.parse_args(argv)
    try:
        result = measure(args.data, max(1, args.repeat))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    runs = result["runs"]
    for key, unit in (("train_seconds", "s"), ("test_seconds", "s"), ("test_accuracy", "%")):
        values = [run[key] for run in runs]
        print(f"{key:15} median {result[key]:8.3f} {unit}   min {min(values):8.3f}   max {max(values):8.3f}")
    print(f"runs: {len(runs)}; one process; 784-100-10 thesis math, LR 0.8, lambda 1e-7, weights ±0.1")
    if args.json:
        print(json.dumps({key: value for key, value in result.items() if key != "runs"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
