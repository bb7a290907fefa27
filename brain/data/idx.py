"""IDX files (the MNIST distribution format), raw or gzip-compressed.

An IDX file is a header -- two zero bytes, a type byte, a dimension count ``d`` --
then ``d`` big-endian 32-bit sizes, then the values, row-major.  MNIST images are
``0x00000803`` (2051: unsigned bytes, 3 dimensions), labels ``0x00000801`` (2049).
"""

from __future__ import annotations

import contextlib
import gzip
import math
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np

from brain.data.dataset import Dataset
from brain.errors import DataError
from brain.user_files import open_input

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
GZIP_MAGIC = b"\x1f\x8b"

_UBYTE = 0x08
_TYPE_NAMES = {
    0x08: "unsigned byte",
    0x09: "signed byte",
    0x0B: "short (int16)",
    0x0C: "int (int32)",
    0x0D: "float (float32)",
    0x0E: "double (float64)",
}
_PIECE = 2**16  # bytes read at a time
_IMAGES_NAME = re.compile(r"images([.-])idx3-ubyte")


def read_idx(path: str | Path, magic: int) -> np.ndarray:
    """Read an IDX file of unsigned bytes whose magic number must be ``magic``.

    Returns a read-only ``uint8`` array shaped as the header says.  The file is read
    in pieces up to what the header declares, so a header that lies about the sizes
    costs no more than the file's real content.  Raises ``DataError`` naming the file
    for a missing, unreadable or special file (a FIFO, a device, a directory), broken
    gzip data, a wrong magic number or value type, a zero size, a truncated file
    (naming the record where it ends) or trailing bytes.
    """
    path = Path(path)
    with _open(path) as stream:
        sizes = _read_header(path, stream, magic)
        count, record = sizes[0], math.prod(sizes[1:])
        values = _read_up_to(path, stream, count * record)
        body = len(values)
        if body < count * record:
            ends_in = body // record + 1
            raise DataError(
                f"truncated: ends inside record {ends_in} of {count} "
                f"({body} of {count * record} value bytes)",
                where=path,
                line=ends_in,
            )
        extra = _count_rest(path, stream)
    if extra:
        raise DataError(f"{extra} bytes after the last of {count} records", where=path)
    array = np.frombuffer(values, np.uint8).reshape(sizes)
    array.flags.writeable = False
    return array


def idx_sizes(path: str | Path, magic: int) -> list[int]:
    """The sizes the header of the IDX file at ``path`` declares, e.g. ``[60000, 28, 28]``.

    Reads the header only (what a loader will need in memory, before loading);
    raises ``DataError`` as ``read_idx`` does for the file and its header.
    """
    path = Path(path)
    with _open(path) as stream:
        return _read_header(path, stream, magic)


def load_idx(images_path: str | Path, labels_path: str | Path | None = None) -> Dataset:
    """Load an MNIST-style pair: images (magic 2051) and labels (magic 2049).

    ``labels_path`` defaults to :func:`default_labels_path`.  Inputs come out as
    ``(N, rows*cols)`` ``uint8``, targets as ``(N, 1)`` ``uint8``.  Raises
    ``DataError`` for anything :func:`read_idx` rejects and when the two files hold
    different numbers of records.
    """
    images_path = Path(images_path)
    labels_path = default_labels_path(images_path) if labels_path is None else Path(labels_path)
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if len(images) != len(labels):
        raise DataError(
            f"{len(images)} images but {len(labels)} labels in {labels_path}", where=images_path
        )
    return Dataset(
        inputs=images.reshape(len(images), -1),
        targets=labels.reshape(-1, 1),
        source=str(images_path),
    )


def default_labels_path(images_path: str | Path) -> Path:
    """The labels file that the MNIST naming convention pairs with ``images_path``.

    ``…-images-idx3-ubyte[.gz]`` -> ``…-labels-idx1-ubyte[.gz]``, preferring the same
    compression and falling back to the other one if only that exists.  Raises
    ``DataError`` when the name does not follow the convention.
    """
    images_path = Path(images_path)
    name = images_path.name
    if not _IMAGES_NAME.search(name):
        raise DataError(
            "cannot derive the labels file from this name; give the labels file explicitly",
            where=images_path,
            allowed="names containing '-images-idx3-ubyte'",
        )
    labels_name = _IMAGES_NAME.sub(r"labels\1idx1-ubyte", name)
    same = images_path.with_name(labels_name)
    other = images_path.with_name(
        labels_name.removesuffix(".gz") if labels_name.endswith(".gz") else labels_name + ".gz"
    )
    return other if not same.exists() and other.exists() else same


def is_idx(head: bytes) -> bool:
    """Whether the first bytes of a file look like IDX (or gzip, which only IDX uses here)."""
    return head.startswith(GZIP_MAGIC) or head.startswith(b"\x00\x00")


@contextlib.contextmanager
def _open(path: Path) -> Iterator[IO[bytes]]:
    """The IDX bytes of ``path`` as a stream: the file itself, or its gzip content."""
    with open_input(path, "file", DataError) as handle:
        if handle.read(len(GZIP_MAGIC)) != GZIP_MAGIC:
            handle.seek(0)
            yield handle
            return
        handle.seek(0)
        with gzip.GzipFile(fileobj=handle, mode="rb") as stream:
            yield stream


def _read_header(path: Path, stream: IO[bytes], magic: int) -> list[int]:
    ndim = magic & 0xFF
    header_len = 4 + 4 * ndim
    head = _read_up_to(path, stream, header_len)
    _check_magic(path, head, magic)
    if len(head) < header_len:
        raise DataError(
            f"the IDX header needs {header_len} bytes, the file has {len(head)}", where=path
        )
    sizes = [int(s) for s in np.frombuffer(head, ">u4", count=ndim, offset=4)]
    if 0 in sizes:
        raise DataError(f"the header declares a size of 0: {sizes}", where=path)
    return sizes


def _read_up_to(path: Path, stream: IO[bytes], size: int) -> bytearray:
    """At most ``size`` bytes of ``stream``, fewer at its end; memory grows with what is really there.

    Each read asks for as much as has been read so far (at least ``_PIECE``): a header
    claiming gigabytes costs at most twice the bytes the file really holds.
    """
    data = bytearray()
    while len(data) < size and (piece := _piece(path, stream, min(size - len(data), max(len(data), _PIECE)))):
        data += piece
    return data


def _count_rest(path: Path, stream: IO[bytes]) -> int:
    """How many bytes ``stream`` still holds, read piece by piece and dropped."""
    rest = 0
    while piece := _piece(path, stream, _PIECE):
        rest += len(piece)
    return rest


def _piece(path: Path, stream: IO[bytes], size: int) -> bytes:
    try:
        return stream.read(size)
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"broken gzip data: {error}", where=path) from None


def _check_magic(path: Path, data: bytes, magic: int) -> None:
    wanted = f"{magic} (0x{magic:08X})"
    if len(data) < 4 or data[:2] != b"\x00\x00":
        raise DataError("not an IDX file", where=path, allowed=f"magic number {wanted}")
    found = int.from_bytes(data[:4], "big")
    if data[2] != _UBYTE:
        kind = _TYPE_NAMES.get(data[2], "unknown")
        raise DataError(
            f"IDX values of type 0x{data[2]:02X} ({kind}) are not supported",
            where=path,
            allowed=f"type 0x08 (unsigned byte), magic number {wanted}",
        )
    if found != magic:
        what = {IMAGES_MAGIC: "an images file", LABELS_MAGIC: "a labels file"}.get(
            found, f"{data[3]} dimensions"
        )
        raise DataError(
            f"magic number {found} (0x{found:08X}): {what}",
            where=path,
            allowed=f"magic number {wanted}",
        )
