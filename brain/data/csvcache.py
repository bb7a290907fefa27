"""A binary copy of a parsed CSV beside it (``name.csv.cache.npz``), so the next load skips parsing.

The cache records the CSV's size and modification time (ns) and the target columns
it was parsed with; any difference, or a cache that cannot be read, means it is
rebuilt.  It is a convenience only: failing to write it is not an error.
"""

from __future__ import annotations

import contextlib
import zipfile
from pathlib import Path

import numpy as np

from brain.atomic import atomic_open
from brain.data.csvfile import read_csv
from brain.data.dataset import Dataset
from brain.errors import UserError
from brain.user_files import input_problem

_VERSION = 1


def cache_path(csv_path: str | Path) -> Path:
    """Where the cache of ``csv_path`` lives."""
    csv_path = Path(csv_path)
    return csv_path.with_name(csv_path.name + ".cache.npz")


def read_csv_cached(
    path: str | Path, target_start: int = 0, target_end: int = 1, *, cache: bool = True
) -> Dataset:
    """:func:`~brain.data.csvfile.read_csv` through the cache beside the file.

    A valid cache is used; otherwise the CSV is parsed and (with ``cache``) the cache
    is rewritten atomically.  Raises what ``read_csv`` raises; a broken or stale cache
    never raises, it is rebuilt.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        return read_csv(path, target_start, target_end)  # raises the DataError
    stamp = np.array([_VERSION, stat.st_size, stat.st_mtime_ns, target_start, target_end])
    if cache:
        cached = _load(cache_path(path), stamp, str(path))
        if cached is not None:
            return cached
    dataset = read_csv(path, target_start, target_end)
    if cache:
        _store(cache_path(path), stamp, dataset)
    return dataset


def _load(where: Path, stamp: np.ndarray, source: str) -> Dataset | None:
    if input_problem(where) is not None:  # none yet, or a FIFO that would block the read
        return None
    try:
        with np.load(where, allow_pickle=False) as npz:
            if not np.array_equal(npz["stamp"], stamp):
                return None
            inputs, targets = npz["inputs"], npz["targets"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if (
        inputs.dtype not in (np.uint8, np.float64)
        or targets.dtype != np.float64
        or inputs.ndim != 2
        or targets.ndim != 2
        or len(inputs) != len(targets)
        or targets.shape[1] != stamp[4] - stamp[3]
    ):
        return None
    inputs.flags.writeable = False
    targets.flags.writeable = False
    return Dataset(inputs=inputs, targets=targets, source=source)


def _store(where: Path, stamp: np.ndarray, dataset: Dataset) -> None:
    # A read-only folder, a full disk or a special file in the way costs only the speed-up.
    with contextlib.suppress(OSError, UserError), atomic_open(where, "wb") as handle:
        np.savez(handle, stamp=stamp, inputs=dataset.inputs, targets=dataset.targets)
