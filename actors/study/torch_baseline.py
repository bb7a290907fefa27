"""PyTorch on the CPU, the same network, data and training, as the yardstick of ``bench compare`` (optional).

784-100-10 with an ELU hidden layer and a softmax output (inside the cross-entropy
loss), starting from our own initial weights (``brain.modern.initial_weights`` with
the run's Init and Seed), every image divided by its brightest pixel
(``PreProcessing: Proportional``), shuffled batches, float32.  The optimizer is
PyTorch's SGD with our momentum, Nesterov flag and L2 factor (PyTorch's weight decay
is the gradient of ``λ2·Σw²``: ``2·λ2``), and the learning rate of each epoch comes
from our schedule — so the two differ only in their float32 master weights and in
the order of the shuffled lines.  The epoch time is the training loop alone; the
test pass follows it.  ``torch`` is imported only here, only when asked for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from brain.data import load_dataset
from brain.errors import UserError
from brain.layout import Layout
from brain.modern import Modern, Schedule, initial_weights
from brain.modern.forward import matrices
from brain.modern.hyper import Optimizer
from brain.preprocessing import PreProcessing

INSTALL_HINT = "pip install torch"
OPTIMIZERS = (Optimizer.SGD, Optimizer.MOMENTUM, Optimizer.NESTEROV)  # what torch.optim.SGD computes as we do
NETWORK = Layout.of(("Identity", 784), ("ELU", 100), ("SoftMax", 10))


def available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class TorchTraining:
    """How PyTorch trains: our hyper-parameters, schedule, initial weights (``init``, ``seed``)."""

    hyper: Modern
    schedule: Schedule
    init: str
    seed: int

    def __post_init__(self) -> None:
        hyper = self.hyper
        if hyper.optimizer not in OPTIMIZERS or hyper.loss != "crossentropy" or hyper.lambda_l1:
            raise UserError(
                f"PyTorch cannot train as ours do here (optimizer {hyper.optimizer}, loss {hyper.loss}, "
                f"L1 {hyper.lambda_l1:g})",
                allowed="Loss: CrossEntropy, Optimizer: SGD, Momentum or Nesterov, no L1, or --no-torch",
            )
        if hyper.preprocessing != PreProcessing.Proportional:
            raise UserError(
                "PyTorch's inputs are each image divided by its brightest pixel",
                allowed="PreProcessing: Proportional, or --no-torch",
            )


@dataclass(frozen=True)
class TorchEpoch:
    epoch: int
    epoch_seconds: float
    test_accuracy: float  # percent
    test_seconds: float


def proportional(inputs: np.ndarray) -> np.ndarray:
    """Every row as float32 divided by its largest value (a row of zeros stays 0)."""
    pixels = inputs.astype(np.float32)
    brightest = pixels.max(axis=1, keepdims=True)
    pixels /= np.where(brightest > 0, brightest, 1)
    return pixels


def _inputs(path) -> tuple[np.ndarray, np.ndarray]:
    dataset = load_dataset(path)
    return proportional(dataset.inputs), dataset.targets[:, 0].astype(np.int64)


def model(training: TorchTraining):
    """The network with our initial weights: ``nn.Linear`` keeps ``W[:n]ᵀ`` and the bias row apart."""
    import torch
    from torch import nn

    network = nn.Sequential(nn.Linear(784, 100), nn.ELU(training.hyper.elu_alpha), nn.Linear(100, 10))
    weights = initial_weights(NETWORK, training.init, training.seed)
    linears = (network[0], network[2])
    with torch.no_grad():
        for below, matrix, linear in zip(NETWORK.layers, matrices(weights, NETWORK), linears, strict=False):
            linear.weight.copy_(torch.from_numpy(matrix[: below.neurons].T.astype(np.float32)))
            linear.bias.copy_(torch.from_numpy(matrix[below.neurons].astype(np.float32)))
    return network


def optimizer(network, hyper: Modern):
    """``torch.optim.SGD`` doing our SGD, Momentum or Nesterov step with our L2 (``2·λ2`` weight decay)."""
    import torch

    return torch.optim.SGD(
        network.parameters(),
        lr=hyper.learning_rate,
        momentum=0.0 if hyper.optimizer is Optimizer.SGD else hyper.momentum,
        nesterov=hyper.optimizer is Optimizer.NESTEROV,
        weight_decay=2 * hyper.lambda_l2,
    )


def train(train_file, test_file, *, epochs: int, training: TorchTraining, threads: int) -> list[TorchEpoch]:
    """Train from our initial weights and test after every epoch; a mini-batch of 1 is online SGD.

    ``threads`` is PyTorch's intra-op thread count.  More threads than idle cores is
    ruinous for it (its OpenMP workers spin at every barrier): on a shared machine, 1.
    """
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    hyper = training.hyper
    x_train, y_train = (torch.from_numpy(a) for a in _inputs(train_file))
    x_test, y_test = (torch.from_numpy(a) for a in _inputs(test_file))
    network = model(training)
    sgd = optimizer(network, hyper)
    loss = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(training.seed)
    results: list[TorchEpoch] = []
    for epoch in range(1, epochs + 1):
        history = [100.0 - e.test_accuracy for e in results]
        for group in sgd.param_groups:
            group["lr"] = training.schedule.rate(hyper.learning_rate, epoch - 1, history)
        order = torch.randperm(len(x_train), generator=generator)
        began = time.perf_counter()
        for start in range(0, len(order), hyper.minibatch):
            rows = order[start : start + hyper.minibatch]
            sgd.zero_grad(set_to_none=True)
            loss(network(x_train[rows]), y_train[rows]).backward()
            sgd.step()
        trained = time.perf_counter() - began
        began = time.perf_counter()
        with torch.no_grad():
            correct = int((network(x_test).argmax(dim=1) == y_test).sum())
        results.append(TorchEpoch(epoch, trained, 100.0 * correct / len(y_test), time.perf_counter() - began))
    return results
