"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from brain.data import fetch_mnist

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """``<repo>/data/mnist`` holding the four MNIST ``.gz`` files, fetched (once, then
    only verified) from the local mirror ``../shared/data/mnist`` beside the repo."""
    dest = REPO / "data" / "mnist"
    fetch_mnist(dest, mirror=str(REPO.parent / "shared" / "data" / "mnist"), report=lambda _: None)
    return dest


@pytest.fixture
def one_process():
    """A pool of one process (the pool tests'), closed after the test."""
    from actors.executors.pool import ProcessPool, fork_server

    pool = ProcessPool(1, fork_server())
    try:
        yield pool
    finally:
        pool.close()
