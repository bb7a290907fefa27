"""An uncompressed copy of a gzip-compressed IDX pair beside its images file
(``train-images-idx3-ubyte.gz.cache.npz``), so the next load skips decompressing it.

Inflating MNIST's training images takes about a quarter of a second here, every run;
reading the copy, a few hundredths.  The copy records, for the images and the labels
file, the size, the modification time (ns) and the gzip trailer (the CRC-32 and the
length of the decompressed data), so that a file rewritten within one tick of the
file system's clock is still told apart.  Any difference, or a copy that cannot be
read, means the pair is decompressed again and the copy rewritten
(``brain.data.cache``).  A pair of uncompressed files is read as it is: there is
nothing to save.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from brain.data.cache import load_copy, store_copy
from brain.data.dataset import Dataset
from brain.data.idx import GZIP_MAGIC, default_labels_path, load_idx
from brain.errors import DataError
from brain.user_files import open_input

_VERSION = 1
_TRAILER = 8  # gzip ends with the CRC-32 and the length (mod 2**32) of the data it holds, little-endian


def load_idx_cached(
    images_path: str | Path, labels_path: str | Path | None = None, *, cache: bool = True
) -> Dataset:
    """:func:`~brain.data.idx.load_idx` through the copy beside a gzip-compressed images file.

    A valid copy is used; otherwise the pair is loaded and (with ``cache``, when either
    file is compressed) the copy rewritten atomically.  Raises what ``load_idx``
    raises; a broken or stale copy never raises, it is rebuilt.
    """
    images_path = Path(images_path)
    labels_path = default_labels_path(images_path) if labels_path is None else Path(labels_path)
    stamp = _stamp(images_path, labels_path) if cache else None
    if stamp is not None:
        cached = load_copy(images_path, stamp, _fits)
        if cached is not None:
            return cached
    dataset = load_idx(images_path, labels_path)
    if stamp is not None:
        store_copy(images_path, stamp, dataset)
    return dataset


def _stamp(images_path: Path, labels_path: Path) -> np.ndarray | None:
    """What identifies the pair's content; None when neither file is compressed or one cannot be read."""
    images, labels = _fingerprint(images_path), _fingerprint(labels_path)
    if images is None or labels is None or (images[-1] < 0 and labels[-1] < 0):
        return None
    return np.array([_VERSION, *images, *labels], dtype=np.int64)


def _fingerprint(path: Path) -> list[int] | None:
    """Size, modification time and the gzip trailer's two numbers (-1, -1 for an uncompressed file)."""
    try:
        with open_input(path, "file", DataError) as handle:
            status = os.fstat(handle.fileno())
            compressed = handle.read(len(GZIP_MAGIC)) == GZIP_MAGIC and status.st_size > _TRAILER
            if compressed:
                handle.seek(-_TRAILER, os.SEEK_END)
                trailer = handle.read(_TRAILER)
    except (DataError, OSError):
        return None  # load_idx says what is wrong with the file
    if not compressed:
        return [status.st_size, status.st_mtime_ns, -1, -1]
    crc, length = int.from_bytes(trailer[:4], "little"), int.from_bytes(trailer[4:], "little")
    return [status.st_size, status.st_mtime_ns, crc, length]


def _fits(inputs: np.ndarray, targets: np.ndarray) -> bool:
    return inputs.dtype == np.uint8 and targets.dtype == np.uint8 and targets.shape[1] == 1
