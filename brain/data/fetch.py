"""Fetching the four MNIST IDX files from a mirror, verified by their decompressed bytes.

Mirrors re-compress the files differently, so the checksum that identifies MNIST is
the SHA-256 of the decompressed IDX bytes, not of the ``.gz`` file.
"""

from __future__ import annotations

import gzip
import hashlib
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

from brain.atomic import atomic_open, folder_problem
from brain.errors import DataError
from brain.user_files import read_bytes

MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz":
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte.gz":
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte.gz":
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte.gz":
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

DEFAULT_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

_TIMEOUT_SECONDS = 60
# The largest file is under 10 MB; a mirror sending more is not serving MNIST.
_MAX_BYTES = 64 * 2**20


def fetch_mnist(
    dest: str | Path, mirror: str | None = None, *, report: Callable[[str], object] = print
) -> list[Path]:
    """Make sure ``dest`` holds the four MNIST ``.gz`` files; return their paths.

    A file already present whose decompressed bytes have the canonical SHA-256 is kept
    (``report`` gets ``"ok <name>"``); any other is fetched (``"fetched <name> from
    <where>"``) and written atomically, so an interrupted fetch leaves the old file or
    none.  ``mirror`` is a local folder or a URL prefix (``https://``, ``http://``,
    ``file://``); by default the public :data:`DEFAULT_MIRRORS` are tried in order.
    Raises ``DataError`` naming the file and every mirror tried with its problem
    (unreachable, not gzip, wrong checksum) when none delivers a valid copy, or when
    ``dest`` cannot be written.
    """
    dest = Path(dest)
    if (problem := folder_problem(dest)) is not None:  # before anything is downloaded
        raise DataError(f"cannot write: the destination folder {problem}", where=dest)
    mirrors: Sequence[str] = DEFAULT_MIRRORS if mirror is None else (str(mirror),)
    paths = []
    for name, digest in MNIST_SHA256.items():
        target = dest / name
        paths.append(target)
        if _holds_valid_copy(target, digest):
            report(f"ok {name}")
            continue
        data, where = _download(name, digest, mirrors, target)
        try:
            with atomic_open(target, "wb") as handle:
                handle.write(data)
        except OSError as error:
            raise DataError(f"cannot write: {error.strerror or error}", where=target) from None
        report(f"fetched {name} from {where}")
    return paths


def _holds_valid_copy(target: Path, digest: str) -> bool:
    try:
        data = read_bytes(target, "file", DataError, limit=_MAX_BYTES)
    except DataError:  # absent, too large, or not a regular file: fetched again (atomic_open judges it)
        return False
    return _checksum_problem(data, digest) is None


def _download(
    name: str, digest: str, mirrors: Sequence[str], target: Path
) -> tuple[bytes, str]:
    problems = []
    for mirror in mirrors:
        where = _location(mirror, name)
        try:
            data = _get(where)
        except (OSError, ValueError, DataError) as error:
            problems.append(f"{where}: unreachable ({error})")
            continue
        problem = _checksum_problem(data, digest)
        if problem is None:
            return data, where
        problems.append(f"{where}: {problem}")
    raise DataError(
        f"no mirror delivered a valid copy of {name}: " + "; ".join(problems),
        where=target,
        allowed=f"a gzip file whose decompressed bytes have SHA-256 {digest}",
    )


def _location(mirror: str, name: str) -> str:
    if "://" in mirror:
        return mirror.rstrip("/") + "/" + name
    return str(Path(mirror) / name)


def _get(where: str) -> bytes:
    if "://" not in where:
        return read_bytes(Path(where), "file", DataError, limit=_MAX_BYTES)
    with urllib.request.urlopen(where, timeout=_TIMEOUT_SECONDS) as response:
        data = response.read(_MAX_BYTES + 1)
    if len(data) > _MAX_BYTES:
        raise ValueError(f"more than {_MAX_BYTES} bytes")
    return data


def _checksum_problem(data: bytes, digest: str) -> str | None:
    try:
        found = hashlib.sha256(gzip.decompress(data)).hexdigest()
    except (OSError, EOFError, zlib.error):
        return "not valid gzip data"
    if found != digest:
        return f"SHA-256 of the decompressed bytes is {found}, expected {digest}"
    return None
