"""Errors a user can cause and fix: each names the file, the line and what is allowed."""

from __future__ import annotations

from collections.abc import Iterable
from os import PathLike

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
