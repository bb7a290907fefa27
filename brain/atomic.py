"""Whole-file replacement that a crash cannot leave half-written: temp file, fsync, rename.

Only what is ours is replaced: a regular file, or a name not taken yet.  A
directory, FIFO, socket or device at the path is refused (``output_problem``
says why, before anything is written).  A symbolic link is written through: the
link stays and its target is replaced, by a temporary file in the target's folder.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from os import PathLike
from pathlib import Path
from typing import IO

from brain.errors import UserError, special_kind


def written_path(path: str | PathLike[str]) -> Path:
    """The file a write to ``path`` replaces: ``path`` itself, or the target of the symlink(s) it names."""
    return Path(os.path.realpath(path))


def output_problem(path: str | PathLike[str]) -> str | None:
    """Why ``atomic_open(path)`` would refuse, e.g. "is a FIFO, not a regular file"; None if it would not.

    The path (through its symlinks) must be a regular file or absent, and its folder
    must exist or be creatable, and be writable.
    """
    target = written_path(path)
    return _kind_problem(path, target) or folder_problem(target.parent)


def folder_problem(folder: str | PathLike[str]) -> str | None:
    """Why a file cannot be created in ``folder`` (made with its parents when missing); None if it can.

    The reason reads after the file's name: "cannot be created: the folder /x is not writable".
    """
    existing = Path(os.path.abspath(folder))
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    try:
        mode = os.stat(existing).st_mode
    except OSError as exc:
        return f"cannot be created: the folder {existing}: {exc.strerror or exc}"
    if not stat.S_ISDIR(mode):
        return f"cannot be created: {existing} is {special_kind(mode) or 'a regular file'}, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"cannot be created: the folder {existing} is not writable"
    return None


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on a clean exit it replaces ``path``.

    The data are flushed and fsynced before the rename, and the folder is fsynced
    after it, so that either the old or the new file survives a crash.  On an
    exception (or cancellation) the temporary file is removed and ``path`` is left
    as it was.  A symlink at ``path`` stays: its target is replaced.  A path that
    is not a regular file (a directory, FIFO, socket, device) raises ``UserError``
    and is never touched; other problems (a folder that cannot be made, no space)
    are the ``OSError`` of the call that failed.
    """
    target = written_path(path)
    _refuse(path, _kind_problem(path, target))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would make every result private
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _refuse(path, _kind_problem(path, target))  # it may have appeared while we wrote
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)


def atomic_write(path: str | Path, write: Callable[[IO], object], mode: str = "wb") -> None:
    """Call ``write(handle)`` on a temporary file and move it over ``path`` atomically."""
    with atomic_open(path, mode) as handle:
        write(handle)


def _kind_problem(path: str | PathLike[str], target: Path) -> str | None:
    """Why ``target``, the resolved ``path``, may not be replaced; None for a regular file or no file."""
    try:
        mode = os.lstat(target).st_mode
    except (FileNotFoundError, NotADirectoryError):  # the folder's turn (folder_problem)
        return None
    except OSError as exc:
        return f"cannot be examined: {exc.strerror or exc}"
    if stat.S_ISLNK(mode):  # realpath stops inside a loop of links
        return "is a loop of symbolic links"
    kind = special_kind(mode)
    if kind is None:
        return None
    link = f" (its link leads to {target})" if os.path.islink(path) else ""
    return f"is {kind}, not a regular file{link}"


def _refuse(path: str | PathLike[str], problem: str | None) -> None:
    if problem is not None:
        raise UserError(
            f"not replaced: it {problem}", where=path, allowed="a regular file, or a name not taken yet",
        )  # fmt: skip


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
