"""The data layer: MNIST IDX files, the thesis' CSV form, its binary cache, fetching, targets.

This package and ``brain.persistence`` are the only parts of ``brain`` that touch files.
"""

from brain.data.convert import convert_idx_to_csv
from brain.data.csvcache import cache_path, read_csv_cached
from brain.data.csvfile import read_csv, write_csv
from brain.data.dataset import Dataset
from brain.data.fetch import DEFAULT_MIRRORS, MNIST_SHA256, fetch_mnist
from brain.data.idx import default_labels_path, load_idx, read_idx
from brain.data.load import load_dataset, read_size
from brain.data.targets import Targets, interpret_targets

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
