"""IDX files (the MNIST distribution format), raw or gzip-compressed.

An IDX file is a header -- two zero bytes, a type byte, a dimension count ``d`` --
then ``d`` big-endian 32-bit sizes, then the values, row-major.  MNIST images are
``0x00000803`` (2051: unsigned bytes, 3 dimensions), labels ``0x00000801`` (2049).
"""

from __future__ import annotations

import gzip
import math
import re
import zlib
from pathlib import Path

import numpy as np

from brain.data.dataset import Dataset
from brain.errors import DataError

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
_IMAGES_NAME = re.compile(r"images([.-])idx3-ubyte")


def read_idx(path: str | Path, magic: int) -> np.ndarray:
    """Read an IDX file of unsigned bytes whose magic number must be ``magic``.

    Returns a read-only ``uint8`` array shaped as the header says.  The whole file is
    read first and its real length compared with the header, so a header that lies
    about the sizes costs nothing.  Raises ``DataError`` naming the file for a missing
    or unreadable file, broken gzip data, a wrong magic number or value type, a zero
    size, a truncated file (naming the record where it ends) or trailing bytes.
    """
    path = Path(path)
    data = _read_bytes(path)
    ndim = magic & 0xFF
    header_len = 4 + 4 * ndim
    _check_magic(path, data, magic)
    if len(data) < header_len:
        raise DataError(
            f"the IDX header needs {header_len} bytes, the file has {len(data)}", where=path
        )
    sizes = [int(s) for s in np.frombuffer(data, ">u4", count=ndim, offset=4)]
    if 0 in sizes:
        raise DataError(f"the header declares a size of 0: {sizes}", where=path)
    count, record = sizes[0], math.prod(sizes[1:])
    body = len(data) - header_len
    if body < count * record:
        ends_in = body // record + 1
        raise DataError(
            f"truncated: ends inside record {ends_in} of {count} "
            f"({body} of {count * record} value bytes)",
            where=path,
            line=ends_in,
        )
    if body > count * record:
        raise DataError(
            f"{body - count * record} bytes after the last of {count} records", where=path
        )
    return np.frombuffer(data, np.uint8, count=count * record, offset=header_len).reshape(sizes)


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


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError("file not found", where=path) from None
    except OSError as error:
        raise DataError(f"cannot read: {error.strerror or error}", where=path) from None
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
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
