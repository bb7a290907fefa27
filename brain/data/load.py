"""One entry point for every data file: IDX image files and data CSVs, told apart by their bytes."""

from __future__ import annotations

import math
import os
from pathlib import Path

from brain.data.dataset import Dataset
from brain.data.idx import IMAGES_MAGIC, LABELS_MAGIC, default_labels_path, idx_sizes, is_idx
from brain.data.idxcache import load_idx_cached
from brain.errors import DataError
from brain.user_files import open_input


def load_dataset(
    path: str | Path,
    *,
    labels_path: str | Path | None = None,
    target_start: int = 0,
    target_end: int = 1,
    cache: bool = True,
) -> Dataset:
    """Load a data file: an IDX images file (``…-images-idx3-ubyte``, gzip or raw) or a
    data CSV.

    IDX: the labels file is ``labels_path`` or, by default, the one the MNIST naming
    convention pairs with ``path``; ``target_start``/``target_end`` are not used.
    CSV: columns ``[target_start, target_end)`` are targets, every later column an
    input.  With ``cache`` a binary copy beside the file (``name.cache.npz``) speeds
    up the next load of a CSV (no parsing) or a gzip-compressed IDX pair (no
    decompressing).  Raises ``DataError`` naming the file (and the line or record)
    for a file that is missing or not a regular file (a FIFO, a device, a directory),
    for anything malformed -- see ``load_idx`` and ``read_csv`` -- and for a
    ``labels_path`` given with a CSV.
    """
    path = Path(path)
    head, _ = _head(path)
    if is_idx(head):
        return load_idx_cached(path, labels_path, cache=cache)
    if labels_path is not None:
        raise DataError(
            "a labels file goes only with IDX images; a CSV holds its own targets",
            where=path,
            allowed="TargetColumnStart/TargetColumnEnd to choose the target columns",
        )
    from brain.data.csvcache import read_csv_cached  # here: pyarrow loads only for a CSV

    return read_csv_cached(path, target_start, target_end, cache=cache)


def read_size(path: str | Path, *, labels_path: str | Path | None = None) -> int:
    """The bytes loading the data file at ``path`` holds in memory, known before it is read.

    IDX: the images and labels their headers declare (exact: one byte a value).  CSV:
    the size of its text, which is read whole before it is parsed.  Raises
    ``DataError`` as ``load_dataset`` does for a missing or special file, a missing
    labels file or an IDX header it refuses.
    """
    path = Path(path)
    head, size = _head(path)
    if not is_idx(head):
        return size
    labels = default_labels_path(path) if labels_path is None else Path(labels_path)
    return math.prod(idx_sizes(path, IMAGES_MAGIC)) + math.prod(idx_sizes(labels, LABELS_MAGIC))


def _head(path: Path) -> tuple[bytes, int]:
    """The first bytes of the data file at ``path`` (enough to tell IDX from CSV) and its size."""
    with open_input(path, "file", DataError) as handle:
        return handle.read(4), os.fstat(handle.fileno()).st_size
