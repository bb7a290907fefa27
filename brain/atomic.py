"""Whole-file replacement that a crash cannot leave half-written: temp file, fsync, rename.

The temp file is ``.NAME.<random>.tmp`` beside ``NAME``, so that a later run can find
what a killed one left (``temp_files``).  When another write must land between the
data and the rename (a training pass' result row, see ``actors/records.py``), the two
steps are taken apart: ``stage`` writes the complete temp file, ``Staged.commit``
renames it into place.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from brain.errors import UserError

TEMP_SUFFIX = ".tmp"


@dataclass(frozen=True)
class Staged:
    """A complete, fsynced temp file waiting to replace ``path``."""

    path: Path
    temp: Path

    def commit(self) -> None:
        """Rename the temp file over ``path``, then fsync the folder.

        Raises ``OSError`` when the rename fails; the temp file is left in place then,
        for the caller to discard or for a later run to finish.
        """
        os.replace(self.temp, self.path)
        _fsync_dir(self.path.parent)

    def discard(self) -> None:
        """Remove the temp file (it may be gone already); ``path`` is left as it was."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temp)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on a clean exit it replaces ``path``.

    The data are flushed and fsynced before the rename, and the folder is fsynced
    after it, so that either the old or the new file survives a crash.  On an
    exception (or cancellation) the temporary file is removed and ``path`` is left
    as it was; an ``OSError`` (a full disk, a folder we may not write) propagates
    as it is -- ``atomic_write`` turns it into a ``UserError``.
    """
    with _staging(Path(path), mode) as (handle, staged):
        yield handle
    try:
        staged.commit()
    except BaseException:
        staged.discard()
        raise


def atomic_write(path: str | Path, write: Callable[[IO], object], mode: str = "wb") -> None:
    """Call ``write(handle)`` on a temporary file and move it over ``path`` atomically.

    An ``OSError`` on the way is a ``UserError`` naming ``path`` and the system's
    reason (``results.csv: cannot write: No space left on device``); the old file is
    intact and no temp file is left then.
    """
    with reported(path), atomic_open(path, mode) as handle:
        write(handle)


def stage(path: str | Path, write: Callable[[IO], object], mode: str = "wb") -> Staged:
    """The first half of ``atomic_write``: ``write(handle)`` into a complete, fsynced temp
    file beside ``path``, which is not touched until ``commit``.

    Errors as in ``atomic_write``; no temp file is left after one.
    """
    with reported(path), _staging(Path(path), mode) as (handle, staged):
        write(handle)
    return staged


@contextlib.contextmanager
def reported(path: str | Path, error: type[UserError] = UserError) -> Iterator[None]:
    """Turn an ``OSError`` raised in the block into one ``error`` naming ``path`` and its reason."""
    try:
        yield
    except OSError as exc:
        raise error(f"cannot write: {exc.strerror or exc}", where=path) from None


def temp_files(path: str | Path) -> list[Path]:
    """The temp files of ``path`` that are still there (``.NAME.<random>.tmp`` beside it).

    Another file's temp is never among them: the random part holds no dot, so that
    ``.a.npz.x.1234.tmp`` (a temp of ``a.npz.x``) is not taken for one of ``a.npz``'s.
    """
    folder, prefix = _temp_place(Path(path))
    try:
        names = [entry.name for entry in os.scandir(folder)]
    except OSError:  # no folder yet, or one we may not list: then there is nothing of ours in it
        return []
    return [
        folder / name
        for name in sorted(names)
        if name.startswith(prefix)
        and name.endswith(TEMP_SUFFIX)
        and "." not in name[len(prefix) : -len(TEMP_SUFFIX)]
    ]


@contextlib.contextmanager
def _staging(path: Path, mode: str) -> Iterator[tuple[IO, Staged]]:
    """A temp file beside ``path`` to write; flushed and fsynced when the block ends,
    removed when it raises."""
    folder, prefix = _temp_place(path)
    folder.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=prefix, suffix=TEMP_SUFFIX, dir=folder)
    staged = Staged(path, Path(temp))
    try:
        with os.fdopen(fd, mode) as handle:
            os.chmod(temp, 0o666 & ~_umask())  # mkstemp's 0600 would make every result private
            yield handle, staged
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        staged.discard()
        raise


def _temp_place(path: Path) -> tuple[Path, str]:
    """The folder of ``path``'s temp files and the start of their names: one place, so
    that ``temp_files`` finds what ``_staging`` makes."""
    return path.parent, f".{path.name}."


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
