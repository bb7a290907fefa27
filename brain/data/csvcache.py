"""A binary copy of a parsed CSV beside it (``name.csv.cache.npz``), so the next load skips parsing.

The copy records the CSV's size and modification time (ns) and the target columns
it was parsed with; any difference, or a copy that cannot be read, means it is
rebuilt (``brain.data.cache``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from brain.data.cache import load_copy, store_copy
from brain.data.csvfile import read_csv
from brain.data.dataset import Dataset

_VERSION = 1


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

    def fits(inputs: np.ndarray, targets: np.ndarray) -> bool:
        return (
            inputs.dtype in (np.uint8, np.float64)
            and targets.dtype == np.float64
            and targets.shape[1] == target_end - target_start
        )

    if cache:
        cached = load_copy(path, stamp, fits)
        if cached is not None:
            return cached
    dataset = read_csv(path, target_start, target_end)
    if cache:
        store_copy(path, stamp, dataset)
    return dataset
