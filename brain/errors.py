"""Errors a user can cause and fix: each names the file, the line and what is allowed.

Also the one way to open a file the user named (``open_input``, ``read_bytes``,
``read_text``): only a regular file is opened, so a FIFO, a device or a directory
given by mistake is one error instead of a read that blocks or never ends, and
every read has a cap that fits its format.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from os import PathLike
from typing import BinaryIO

# Larger than any text file the program reads (result tables, logs); /dev/zero is endless.
MAX_TEXT_BYTES = 256 * 2**20

ECHO_LIMIT = 80  # characters of a user's value that a message repeats


def shorten(text: str, limit: int = ECHO_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, the last one "…", when it is longer.

    Every message that repeats a value the user gave (a cell, a directive's value, a
    key) passes it through here, usually as ``f"{shorten(text)!r}"``: a 10 MB line
    must not become a 10 MB error message.
    """
    return text if len(text) <= limit else text[: limit - 1] + "…"


class UserError(Exception):
    """Something in the user's files, flags or data is wrong.

    The CLI prints ``str(error)`` on one line and exits non-zero; a traceback is
    reserved for bugs.  ``where`` is a file name, ``line`` a 1-based line (or record)
    number, ``allowed`` a short description of what would have been accepted.
    """

    def __init__(
        self,
        message: str,
        *,
        where: str | PathLike[str] | None = None,
        line: int | None = None,
        allowed: str | Iterable[str] | None = None,
    ) -> None:
        self.message = message
        self.where = None if where is None else str(where)
        self.line = line
        if allowed is not None and not isinstance(allowed, str):
            allowed = ", ".join(allowed)
        self.allowed = allowed
        super().__init__(str(self))

    def __str__(self) -> str:
        place = ""
        if self.where is not None:
            place = self.where if self.line is None else f"{self.where}:{self.line}"
            place += ": "
        tail = f" (allowed: {self.allowed})" if self.allowed else ""
        return f"{place}{self.message}{tail}"


class LayoutError(UserError):
    """A network layout file is malformed."""


class DataError(UserError):
    """A data file (IDX or CSV) is malformed or does not fit the network."""


class PersistenceError(UserError):
    """A persistence file is unreadable or does not match the network."""


class DivergenceError(UserError):
    """Training produced a NaN or an infinity."""


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
