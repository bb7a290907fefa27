"""Whole-file replacement that a crash cannot leave half-written: temp file, fsync, rename.

The temp file is ``.NAME.<random>.tmp`` beside ``NAME``, so that a later run can find
what a killed one left (``temp_files``).  When another write must land between the
data and the rename (a training pass' result row, see ``actors/records/write_order.py``), the two
steps are taken apart: ``stage`` writes the complete temp file, ``Staged.commit``
renames it into place.

Only what is ours is replaced: a regular file, or a name not taken yet.  A
directory, FIFO, socket or device at the path is refused (``output_problem``
says why, before anything is written), and so is whatever a link into ``/proc``
leads to that has no path of its own (``/dev/stdout`` when it is a pipe).  A
symbolic link is written through: the link stays and its target is replaced, by a
temporary file in the target's folder.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import IO

from brain.errors import UserError
from brain.user_files import special_kind

TEMP_SUFFIX = ".tmp"


@dataclass(frozen=True)
class Staged:
    """A complete, fsynced temp file waiting to replace ``path`` (through its symlinks)."""

    path: Path
    temp: Path

    def commit(self) -> None:
        """Rename the temp file over ``target``, then fsync the folder.

        Raises ``UserError`` when something that is not a regular file has appeared at
        the path meanwhile, ``OSError`` when the rename fails; the temp file is left in
        place then, for the caller to discard or for a later run to finish.
        """
        target = written_path(self.path)
        _refuse(self.path, _kind_problem(self.path, target))
        os.replace(self.temp, target)
        _fsync_dir(target.parent)

    def discard(self) -> None:
        """Remove the temp file (it may be gone already); ``path`` is left as it was."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temp)


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
    try:  # access() answers yes to root everywhere, /proc and /sys included: create a file to be sure
        with tempfile.TemporaryFile(dir=existing):  # unnamed where the file system can (O_TMPFILE)
            pass
    except OSError as exc:
        return f"cannot be created: the folder {existing}: {exc.strerror or exc}"
    return None


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on a clean exit it replaces ``path``.

    The data are flushed and fsynced before the rename, and the folder is fsynced
    after it, so that either the old or the new file survives a crash.  On an
    exception (or cancellation) the temporary file is removed and ``path`` is left
    as it was.  A symlink at ``path`` stays: its target is replaced.  A path that
    is not a regular file (a directory, FIFO, socket, device) raises ``UserError``
    and is never touched; an ``OSError`` (a full disk, a folder we may not write)
    propagates as it is -- ``atomic_write`` turns it into a ``UserError``.
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
    """A temp file beside ``path``'s target to write; flushed and fsynced when the block
    ends, removed when it raises.  A target that is not a regular file is refused first."""
    target = written_path(path)
    _refuse(path, _kind_problem(path, target))
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
    that ``temp_files`` finds what ``_staging`` makes.  Beside the file written, which
    for a symlink is its target (a rename cannot cross file systems)."""
    target = written_path(path)
    return target.parent, f".{target.name}."


def _kind_problem(path: str | PathLike[str], target: Path) -> str | None:
    """Why ``target``, the resolved ``path``, may not be replaced; None for a regular file or no file."""
    try:
        mode = os.lstat(target).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return _pathless_problem(path, target)  # or nothing there: the folder's turn (folder_problem)
    except OSError as exc:
        return f"cannot be examined: {exc.strerror or exc}"
    if stat.S_ISLNK(mode):  # realpath stops inside a loop of links
        return "is a loop of symbolic links"
    kind = special_kind(mode)
    if kind is None:
        return None
    link = f" (its link leads to {target})" if os.path.islink(path) else ""
    return f"is {kind}, not a regular file{link}"


def _pathless_problem(path: str | PathLike[str], target: Path) -> str | None:
    """Why ``path`` may not be replaced when its links lead to no path although something is
    there: a link into ``/proc`` (``/dev/stdout``, ``/proc/self/fd/1``) to a pipe, a socket, a
    terminal or a deleted file.  None when nothing is there."""
    try:
        mode = os.stat(path).st_mode  # follows /proc's links to the object itself
    except OSError:
        return None
    kind = special_kind(mode) or "a file without a name of its own"
    return f"is {kind}, not a regular file (its link leads to {target})"


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
