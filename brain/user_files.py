"""The one way to open a file the user named: only a regular file, and every read capped.

A FIFO, a device or a directory given by mistake is one error instead of a read
that blocks or never ends (``open_input``, ``read_bytes``, ``read_text``), and every
read has a cap that fits its format.  Errors are ``brain.errors.UserError``s
naming the file.
"""

from __future__ import annotations

import os
import stat
from os import PathLike
from typing import BinaryIO

from brain.errors import UserError

# Larger than any text file the program reads (result tables, logs); /dev/zero is endless.
MAX_TEXT_BYTES = 256 * 2**20


def special_kind(mode: int) -> str | None:
    """What a file of ``st_mode`` ``mode`` is when it is not a regular file ("a FIFO", …); None if it is."""
    for test, kind in _SPECIAL_KINDS:
        if test(mode):
            return kind
    return None if stat.S_ISREG(mode) else "not a regular file"


_SPECIAL_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def input_problem(path: str | PathLike[str]) -> str | None:
    """Why ``path`` cannot be read as a file ("not found", "is a FIFO, not a regular file"); None if it can.

    Looks at the file without opening it: opening a FIFO would wait for a writer.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "not found"
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    kind = special_kind(mode)
    return None if kind is None else f"is {kind}, not a regular file"


def open_input(path: str | PathLike[str], what: str, error: type[UserError] = UserError) -> BinaryIO:
    """The regular file at ``path`` (a ``what``, e.g. "network file"), open for reading in binary.

    Anything else — missing, a directory, a FIFO, a device, a socket, unreadable — is
    one ``error`` naming it.  Never blocks: the file is looked at before it is opened,
    and opened with ``O_NONBLOCK`` in case it was swapped for a FIFO in between.
    """
    problem = input_problem(path)
    if problem is None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            problem = f"cannot be read: {exc.strerror or exc}"
        else:
            kind = special_kind(os.fstat(fd).st_mode)
            if kind is None:
                return os.fdopen(fd, "rb")
            os.close(fd)
            problem = f"is {kind}, not a regular file"
    raise error(f"{what} {problem}", where=path)


def read_bytes(
    path: str | PathLike[str], what: str, error: type[UserError] = UserError, *, limit: int
) -> bytes:
    """The bytes of the regular file at ``path``, at most ``limit`` of them (see ``open_input``).

    A larger file is one ``error`` giving its size, before anything is read.
    """
    with open_input(path, what, error) as handle:
        size = os.fstat(handle.fileno()).st_size
        data = b"" if size > limit else handle.read(size + 1)  # + 1: to see whether it grew since
        while size < len(data) <= limit and (piece := handle.read(2**20)):
            data += piece
    if max(size, len(data)) > limit:
        raise error(
            f"{what} is too large: {max(size, len(data)):,} bytes",
            where=path, allowed=f"a {what} of at most {limit:,} bytes",
        )  # fmt: skip
    return data


def read_text(
    path: str | PathLike[str],
    what: str,
    error: type[UserError] = UserError,
    encoding: str = "utf-8",
    *,
    limit: int = MAX_TEXT_BYTES,
) -> str:
    """The text of a file the user named (``what``, e.g. "network file"), at most ``limit`` bytes.

    A missing, unreadable, special (FIFO, device, directory) or larger file, or one
    that is not ``encoding``, is one ``error`` naming it.
    """
    data = read_bytes(path, what, error, limit=limit)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise error(f"cannot read {what}: {exc}", where=path) from None
