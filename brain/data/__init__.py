"""The data layer: MNIST IDX files, the thesis' CSV form, its binary cache, fetching, targets.

This package and ``brain.persistence`` are the only parts of ``brain`` that touch files.
Each name below is imported from its module when it is first used, so that what reads
IDX files or interprets targets (a run, a pool process) never loads what only CSV
files (pyarrow) or fetching (urllib, http) need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_HOMES = {
    "DEFAULT_MIRRORS": "fetch",
    "MNIST_SHA256": "fetch",
    "Dataset": "dataset",
    "Targets": "targets",
    "cache_path": "cache",
    "convert_idx_to_csv": "convert",
    "default_labels_path": "idx",
    "fetch_mnist": "fetch",
    "interpret_targets": "targets",
    "load_dataset": "load",
    "load_idx": "idx",
    "read_csv": "csvfile",
    "read_csv_cached": "csvcache",
    "read_idx": "idx",
    "read_size": "load",
    "write_csv": "csvfile",
}

__all__ = [
    "DEFAULT_MIRRORS",
    "MNIST_SHA256",
    "Dataset",
    "Targets",
    "cache_path",
    "convert_idx_to_csv",
    "default_labels_path",
    "fetch_mnist",
    "interpret_targets",
    "load_dataset",
    "load_idx",
    "read_csv",
    "read_csv_cached",
    "read_idx",
    "read_size",
    "write_csv",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})


if TYPE_CHECKING:
    from brain.data.cache import cache_path
    from brain.data.convert import convert_idx_to_csv
    from brain.data.csvcache import read_csv_cached
    from brain.data.csvfile import read_csv, write_csv
    from brain.data.dataset import Dataset
    from brain.data.fetch import DEFAULT_MIRRORS, MNIST_SHA256, fetch_mnist
    from brain.data.idx import default_labels_path, load_idx, read_idx
    from brain.data.load import load_dataset, read_size
    from brain.data.targets import Targets, interpret_targets
