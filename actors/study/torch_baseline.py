"""PyTorch on the CPU, the same network and data, as the yardstick of ``bench compare`` (optional).

784-100-10 with an ELU hidden layer and a softmax output (inside the cross-entropy
loss), PyTorch's own initial weights, plain SGD in float32 on shuffled batches,
every image divided by its brightest pixel (``PreProcessing: Proportional``), as
the study's modern preset does.  The epoch time is the training loop alone; the
test pass follows it.  ``torch`` is imported only here, only when asked for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from brain.data import load_dataset

INSTALL_HINT = "pip install torch"


def available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class TorchEpoch:
    epoch: int
    epoch_seconds: float
    test_accuracy: float  # percent
    test_seconds: float


def _inputs(path) -> tuple[np.ndarray, np.ndarray]:
    dataset = load_dataset(path)
    pixels = dataset.inputs.astype(np.float32)
    brightest = pixels.max(axis=1, keepdims=True)
    pixels /= np.where(brightest > 0, brightest, 1)
    return pixels, dataset.targets[:, 0].astype(np.int64)


def train(
    train_file, test_file, *, epochs: int, batch: int, learning_rate: float, seed: int, threads: int
) -> list[TorchEpoch]:
    """Train from fresh weights (seeded) and test after every epoch; one batch of 1 is online SGD.

    ``threads`` is PyTorch's intra-op thread count.  More threads than idle cores is
    ruinous for it (its OpenMP workers spin at every barrier): on a shared machine, 1.
    """
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    x_train, y_train = (torch.from_numpy(a) for a in _inputs(train_file))
    x_test, y_test = (torch.from_numpy(a) for a in _inputs(test_file))
    model = nn.Sequential(nn.Linear(784, 100), nn.ELU(), nn.Linear(100, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)
    loss = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    results = []
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(x_train), generator=generator)
        began = time.perf_counter()
        for start in range(0, len(order), batch):
            rows = order[start : start + batch]
            optimizer.zero_grad(set_to_none=True)
            loss(model(x_train[rows]), y_train[rows]).backward()
            optimizer.step()
        trained = time.perf_counter() - began
        began = time.perf_counter()
        with torch.no_grad():
            correct = int((model(x_test).argmax(dim=1) == y_test).sum())
        results.append(TorchEpoch(epoch, trained, 100.0 * correct / len(y_test), time.perf_counter() - began))
    return results
