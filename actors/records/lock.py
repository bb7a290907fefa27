"""Run locks: while a run writes a persistence or result file, no other run may use it.

Two runs appending to one result table would lose or interleave rows; two runs
saving one persistence file would leave whichever finished last, trained on a mix.
So a run takes an exclusive lock on every such file before its first pass and holds
it until it closes; a second run refuses at once with a ``UserError`` that names the
holder.

The lock lives in ``actors/``, not ``brain/``: it belongs to a *run* (the runner
holds it across passes), while ``brain/`` touches files only to read and write data
and weights, one call at a time.

How: ``fcntl.flock(LOCK_EX | LOCK_NB)`` on a sidecar ``<file>.lock`` (the file
itself cannot carry the lock, since every save replaces it by a rename).  The
kernel drops a flock when its holder's descriptor closes, and so when the process
dies -- killed, out of memory, crashed -- so a dead run never blocks the next one.
The sidecar holds the holder's pid and start time, read back only for the message;
it is removed on release.  POSIX only, like the process executor.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from actors.batchfile.parse import Batch
from actors.records.checkpoints import checkpoint_path
from brain.errors import UserError
from brain.user_files import special_kind

SUFFIX = ".lock"


def lock_path(path: str | Path) -> Path:
    """The sidecar that locks ``path``: beside the real file, so that two spellings of
    one file (relative, absolute, through a symlink) share one lock."""
    real = Path(os.path.realpath(path))
    return real.with_name(real.name + SUFFIX)


def files_to_lock(batch: Batch) -> list[Path]:
    """Every file the batch's passes write, in order, once each: PersistenceFile, ResultFile,
    and the checkpoint an interrupted pass without a PersistenceFile writes beside the batch.

    Test passes count too: they append result rows, and an interrupted test pass
    saves its checkpoint to its PersistenceFile.
    """
    files: dict[Path, Path] = {}
    for batch_pass in batch.passes:
        checkpoint = checkpoint_path(batch_pass, batch.path)
        for path in (batch_pass.settings.persistence_file, batch_pass.settings.result_file, checkpoint):
            if path is not None:
                files.setdefault(lock_path(path), path)
    return list(files.values())


class RunLocks:
    """Exclusive locks on the files one run writes.

    ``acquire`` takes all the locks or none; ``release`` frees them all and may be
    called any number of times.  Use as a context manager or call ``release``.
    """

    def __init__(self) -> None:
        self._held: dict[Path, int] = {}

    def __enter__(self) -> RunLocks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    @property
    def held(self) -> tuple[Path, ...]:
        """The sidecars locked now, in the order they were taken."""
        return tuple(self._held)

    def acquire(self, paths: Iterable[str | Path]) -> None:
        """Lock every file in ``paths`` (files already locked by this object are kept).

        Never blocks.  Raises ``UserError`` naming the file, the holder's pid and
        start time when another run (in this process or any other) holds one of
        them, or when a lock file cannot be created or written (a full disk); the
        locks this call took are released again then and their sidecars removed,
        the ones held before stay.
        """
        taken: list[Path] = []
        try:
            for path in paths:
                sidecar = lock_path(path)
                if sidecar not in self._held:
                    self._held[sidecar] = _lock(Path(path), sidecar)
                    taken.append(sidecar)
        except BaseException:
            for sidecar in taken:
                _unlock(sidecar, self._held.pop(sidecar))
            raise

    def release(self) -> None:
        """Free every lock; the sidecar files are removed."""
        while self._held:
            sidecar, fd = self._held.popitem()
            _unlock(sidecar, fd)


def _lock(path: Path, sidecar: Path) -> int:
    """Lock ``sidecar`` and write this process into it; returns the open descriptor."""
    while True:
        try:
            sidecar.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(sidecar, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK, 0o666)
        except OSError as error:
            raise UserError(
                f"cannot create the lock file {sidecar}: {error.strerror or error}",
                where=path,
                allowed="a file in a folder this run may write to",
            ) from None
        kind = special_kind(os.fstat(fd).st_mode)
        if kind is not None:  # not ours: never written, never removed
            os.close(fd)
            raise UserError(f"the lock file {sidecar} is {kind}, not a regular file", where=path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise UserError(
                f"in use by another run ({holder}); wait for it or choose another file", where=path
            ) from None
        if _same_file(fd, sidecar):
            break
        # The holder released and removed the sidecar between our open and our flock:
        # we locked a file nobody else can see.  Start over on the current one.
        os.close(fd)
    started = datetime.now().astimezone().isoformat(timespec="seconds")
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\nstarted {started}\n".encode(), 0)
    except OSError as error:  # a full disk: refuse now rather than leave an empty sidecar
        _unlock(sidecar, fd)
        raise UserError(
            f"cannot write the lock file {sidecar}: {error.strerror or error}", where=path
        ) from None
    return fd


def _unlock(sidecar: Path, fd: int) -> None:
    # Removed while still locked, so that no other run can lock this inode after us.
    with contextlib.suppress(FileNotFoundError):
        os.unlink(sidecar)
    os.close(fd)


def _same_file(fd: int, sidecar: Path) -> bool:
    try:
        current = os.stat(sidecar)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (current.st_dev, current.st_ino)


def _holder(fd: int) -> str:
    """``pid N, started T`` from a sidecar, as far as it can be read."""
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace")
    except OSError:
        text = ""
    fields = dict(line.partition(" ")[::2] for line in text.splitlines())
    pid, started = fields.get("pid", "").strip(), fields.get("started", "").strip()
    if not pid.isdigit():
        return "pid unknown"
    return f"pid {pid}, started {started}" if started else f"pid {pid}"
