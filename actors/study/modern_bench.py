"""``python -m actors.study.modern_bench``: modern training alone, one process, on MNIST.

The settings of ``batch/modern.txt`` (784-100-10 Identity / ELU α=1 / SoftMax,
cross-entropy, He init, Momentum 0.9, learning rate 0.2 on a 10-epoch cosine,
L2 1e-4, mini-batches of 100 in float32, inputs scaled by their maximum) without
the runtime: every epoch shuffles, trains and tests, and prints its training
seconds (wall clock, and the process' CPU time: on a busy machine the wall clock
counts other programs' turns too) and test accuracy.  BLAS runs on one thread unless
``--threads`` says otherwise.  Fetch the data first: ``python -m actors data fetch``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from actors.options import REPO
from brain.data import interpret_targets, load_dataset
from brain.errors import UserError
from brain.layout import Layout
from brain.modern.hyper import Modern, new_state
from brain.modern.init import initial_weights
from brain.modern.schedules import Schedule
from brain.modern.train import test_modern, train_modern, warm_up
from brain.preprocessing import PreProcessing

DEFAULT_DATA = REPO / "data" / "mnist"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m actors.study.modern_bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of the MNIST .gz files")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--hidden", default="ELU", help="activation of the 100 hidden neurons")
    parser.add_argument("--optimizer", default="momentum")
    parser.add_argument("--learning-rate", type=float, default=0.2)
    parser.add_argument("--schedule", default="cosine")
    parser.add_argument("--minibatch", type=int, default=100, help="1 = online")
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--lambda-l2", type=float, default=1e-4)
    parser.add_argument("--init", default="he")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads")
    args = parser.parse_args(argv)
    try:
        train = load_dataset(args.data / "train-images-idx3-ubyte.gz")
        test = load_dataset(args.data / "t10k-images-idx3-ubyte.gz")
    except UserError as error:
        print(error, file=sys.stderr)
        return 1
    layout = Layout.of(("Identity", 784), (args.hidden, 100), ("SoftMax", 10))
    train_targets, test_targets = interpret_targets(train, 10), interpret_targets(test, 10)
    hyper = Modern(
        learning_rate=args.learning_rate, loss="crossentropy", lambda_l2=args.lambda_l2,
        optimizer=args.optimizer, minibatch=args.minibatch, precision=args.precision,
        preprocessing=PreProcessing.Proportional, elu_alpha=1.0,
    )  # fmt: skip
    schedule = Schedule(args.schedule, cosine_epochs=args.epochs)
    weights = initial_weights(layout, args.init, args.seed)
    state, step = new_state(args.optimizer, layout.n_weights), np.zeros(1, np.int64)
    rng = np.random.default_rng(args.seed)
    history: list[float] = []
    seconds_per_epoch: list[float] = []
    warm_up()
    with threadpool_limits(args.threads):
        for epoch in range(args.epochs):
            rate = schedule.rate(args.learning_rate, epoch, history)
            order = rng.permutation(len(train))
            began, cpu_began = time.perf_counter(), time.process_time()
            train_modern(
                weights,
                state,
                step,
                layout,
                train.inputs,
                train_targets,
                order,
                replace(hyper, learning_rate=rate),
            )
            seconds, cpu = time.perf_counter() - began, time.process_time() - cpu_began
            seconds_per_epoch.append(seconds)
            correct, _ = test_modern(weights, layout, test.inputs, test_targets, np.arange(len(test)), hyper)
            history.append(100.0 - correct / len(test) * 100.0)
            print(f"epoch {epoch + 1:2d}  learning rate {rate:.5f}  train {seconds:.3f} s (CPU {cpu:.3f} s)  "
                  f"test accuracy {correct / len(test) * 100:.2f} %", flush=True)  # fmt: skip
    print(f"total training {sum(seconds_per_epoch):.2f} s over {args.epochs} epochs, median epoch "
          f"{statistics.median(seconds_per_epoch):.3f} s; {layout.describe()}, {hyper.optimizer}, "
          f"mini-batch {hyper.minibatch}, {hyper.precision}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
