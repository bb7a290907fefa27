"""A binary copy of a data set beside the file it was read from (``NAME.cache.npz``).

A data CSV is parsed once (``csvcache``), a gzip-compressed IDX pair decompressed once
(``idxcache``); the next load reads the copy instead.  The copy carries a *stamp*,
integers naming what it was made from (sizes, modification times, how it was read);
a stamp that differs, or a copy that cannot be read or does not hold what its kind of
data set holds, means the file is read again and the copy rewritten, atomically
(``brain.atomic``).  A convenience only: failing to write it is not an error.
"""

from __future__ import annotations

import contextlib
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from brain.atomic import atomic_open
from brain.data.dataset import Dataset
from brain.errors import UserError
from brain.user_files import input_problem

# Whether a copy's (inputs, targets) are what its kind of data set holds; shapes are checked before.
Fits = Callable[[np.ndarray, np.ndarray], bool]


def cache_path(data_path: str | Path) -> Path:
    """Where the copy of the data set read from ``data_path`` lives."""
    data_path = Path(data_path)
    return data_path.with_name(data_path.name + ".cache.npz")


def load_copy(data_path: Path, stamp: np.ndarray, fits: Fits) -> Dataset | None:
    """The copy beside ``data_path`` if it bears ``stamp`` and ``fits``; None otherwise (never raises)."""
    where = cache_path(data_path)
    if input_problem(where) is not None:  # none yet, or a FIFO that would block the read
        return None
    try:
        with np.load(where, allow_pickle=False) as npz:
            if not np.array_equal(npz["stamp"], stamp):
                return None
            inputs, targets = npz["inputs"], npz["targets"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if inputs.ndim != 2 or targets.ndim != 2 or len(inputs) != len(targets) or not fits(inputs, targets):
        return None
    inputs.flags.writeable = False
    targets.flags.writeable = False
    return Dataset(inputs=inputs, targets=targets, source=str(data_path))


def store_copy(data_path: Path, stamp: np.ndarray, dataset: Dataset) -> None:
    """Write the copy of ``dataset`` beside ``data_path``, atomically; a failure only costs the speed-up."""
    # A read-only folder, a full disk or a special file in the way: no copy, and no error.
    with contextlib.suppress(OSError, UserError), atomic_open(cache_path(data_path), "wb") as handle:
        np.savez(handle, stamp=stamp, inputs=dataset.inputs, targets=dataset.targets)
