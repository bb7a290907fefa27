"""A binary copy of a data set beside the file it was read from (``NAME.cache.npz``).

A data CSV is parsed once (``csvcache``), a gzip-compressed IDX pair decompressed once
(``idxcache``); the next load maps the copy instead.  The copy carries a *stamp*,
integers naming what it was made from (sizes, modification times, how it was read);
a stamp that differs, or a copy that cannot be read or does not hold what its kind of
data set holds, means the file is read again and the copy rewritten, atomically
(``brain.atomic``).  A convenience only: failing to write it is not an error.

The copy is an ``np.savez`` archive, a zip whose members are stored uncompressed, so
its ``inputs`` and ``targets`` are handed out as read-only memory maps of the members'
bytes inside the file rather than read into memory: a run copies them once, into the
runner's shared memory, and reading them first into freshly allocated memory cost a
page fault per page touched (0.2 s of every start for MNIST's training images, more
when transparent huge pages stall).  The CRC-32 that reading through ``zipfile``
checked is still checked, over the mapped bytes; a member that fails it, is
compressed, runs past the end of the file or has a header ``np.load`` would refuse
means the copy is not used.
"""

from __future__ import annotations

import contextlib
import math
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from brain.atomic import atomic_open
from brain.data.dataset import Dataset
from brain.errors import UserError
from brain.user_files import open_input

# Whether a copy's (inputs, targets) are what its kind of data set holds; shapes are checked before.
Fits = Callable[[np.ndarray, np.ndarray], bool]

_LOCAL_HEADER = 30  # a zip member's local header: "PK\3\4", ..., name and extra field lengths at 26..30
_LOCAL_SIGNATURE = b"PK\x03\x04"
_ENCRYPTED = 0x1  # general purpose flag bit 0
_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def cache_path(data_path: str | Path) -> Path:
    """Where the copy of the data set read from ``data_path`` lives."""
    data_path = Path(data_path)
    return data_path.with_name(data_path.name + ".cache.npz")


def load_copy(data_path: Path, stamp: np.ndarray, fits: Fits) -> Dataset | None:
    """The copy beside ``data_path`` if it bears ``stamp`` and ``fits``; None otherwise (never raises).

    The small ``stamp`` is read first, as ``np.load`` reads it.  ``inputs`` and
    ``targets`` are read-only views of memory maps of the copy (plain ``ndarray``
    objects, not ``np.memmap``: they pickle and save as arrays), checked against the
    CRC-32 the archive records.  A member stored compressed is refused, not read:
    this module never writes one, and the copy rewritten in its place is mapped next
    time.  So is a member in ``.npy`` format 3.0 (numpy writes it only for structured
    types with non-Latin-1 field names, which no data set holds).  A member whose
    values do not lie at a multiple of their alignment in the file (zip headers have
    no padding: ``float64`` columns can land anywhere, ``uint8`` images cannot be
    misaligned) is copied after the check, so that it is aligned as a loaded array is.
    The members are mapped through the one open file whose stamp and headers were
    read, so the file may be replaced (atomically, as ``store_copy`` does) by another
    run at any moment: on Linux the mapping keeps the old file's content.  (A copy
    cut short in place while mapped would fault when read; nothing here does that.)
    """
    try:
        with open_input(cache_path(data_path), "copy") as handle, zipfile.ZipFile(handle) as archive:
            with archive.open("stamp.npy") as member:
                saved = np.lib.format.read_array(member, allow_pickle=False)
            if not np.array_equal(saved, stamp):
                return None
            inputs, targets = _mapped(handle, archive, "inputs.npy"), _mapped(handle, archive, "targets.npy")
    except (OSError, ValueError, KeyError, EOFError, OverflowError, UserError, zipfile.BadZipFile):
        return None
    except (RuntimeError, zlib.error):  # zipfile reading a stamp that is encrypted or corruptly compressed
        return None
    if inputs.ndim != 2 or targets.ndim != 2 or len(inputs) != len(targets) or not fits(inputs, targets):
        return None
    return Dataset(inputs=inputs, targets=targets, source=str(data_path))


def _mapped(handle: BinaryIO, archive: zipfile.ZipFile, name: str) -> np.ndarray:
    """The array in member ``name`` of the archive open as ``handle``, mapped, read-only, its CRC checked.

    Raises ``KeyError`` for a missing member and ``ValueError`` for anything else
    that keeps it from being used.
    """
    info = archive.getinfo(name)
    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & _ENCRYPTED:
        raise ValueError(f"{name} is compressed or encrypted")
    handle.seek(info.header_offset)
    local = handle.read(_LOCAL_HEADER)
    if len(local) != _LOCAL_HEADER or local[:4] != _LOCAL_SIGNATURE:
        raise ValueError(f"{name} has no local header")
    name_length, extra_length = int.from_bytes(local[26:28], "little"), int.from_bytes(local[28:30], "little")
    start = info.header_offset + _LOCAL_HEADER + name_length + extra_length
    size = info.compress_size
    handle.seek(start)
    read_header = _HEADERS.get(np.lib.format.read_magic(handle))
    if read_header is None:
        raise ValueError(f"{name} is in a .npy format version that is not read")
    shape, fortran_order, dtype = read_header(handle)
    if dtype.hasobject or dtype.itemsize == 0 or min(shape, default=0) < 0:
        raise ValueError(f"{name} holds Python objects, items of no size or a negative length")
    header = handle.tell() - start
    if size != info.file_size or header + math.prod(shape) * dtype.itemsize != size:
        raise ValueError(f"{name} is not as long as its header says")
    if start + size > handle.seek(0, 2):
        raise ValueError(f"{name} runs past the end of the file")
    stored = np.asarray(np.memmap(handle, np.uint8, mode="r", offset=start, shape=(size,)))
    if zlib.crc32(stored) != info.CRC:
        raise ValueError(f"{name} fails its CRC-32 check")
    values = stored[header:].view(dtype)
    array = values.reshape(shape[::-1]).T if fortran_order else values.reshape(shape)
    if not array.flags.aligned:
        array = array.copy()
        array.flags.writeable = False
    return array


def store_copy(data_path: Path, stamp: np.ndarray, dataset: Dataset) -> None:
    """Write the copy of ``dataset`` beside ``data_path``, atomically; a failure only costs the speed-up."""
    # A read-only folder, a full disk or a special file in the way: no copy, and no error.
    with contextlib.suppress(OSError, UserError), atomic_open(cache_path(data_path), "wb") as handle:
        np.savez(handle, stamp=stamp, inputs=dataset.inputs, targets=dataset.targets)
