"""A vocabulary: a closed set of names a batch file chooses from (Merge, Loss, Optimizer …).

Each vocabulary is a ``StrEnum`` whose values are the canonical spellings, those
of the batch files, the README, the JSON logs and the result tables: a member is
written wherever a string is (``json.dumps``, f-strings, CSV cells) as that
spelling.  Text becomes a member once, at an edge — the settings table, or a
function of ``brain`` given a name by a caller (a bench's command line) — in any
letter case; the inside compares members and so never meets an unknown name.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Self


class Vocabulary(StrEnum):
    """Base of the vocabularies: ``Merge("mean")`` is ``Merge.MEAN``; an unknown name is a ``ValueError``."""

    @classmethod
    def _missing_(cls, value: object) -> Self:
        if isinstance(value, str):
            for member in cls:
                if member.value.lower() == value.lower():
                    return member
        raise ValueError(f"unknown {cls.word()} {value!r}; allowed: {', '.join(cls.spellings())}")

    @classmethod
    def spellings(cls) -> tuple[str, ...]:
        """The canonical spellings (plain strings), in the order of definition."""
        return tuple(member.value for member in cls)

    @classmethod
    def word(cls) -> str:
        """What a member is, for messages: ``ScheduleKind`` → ``schedule kind``."""
        return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", cls.__name__).lower()

    @classmethod
    def check(cls, value: object) -> Self:
        """``value`` when it is a member; ``TypeError`` otherwise (text is parsed at the edge, not here)."""
        if not isinstance(value, cls):
            raise TypeError(f"expected a member of {cls.__name__}, got {value!r}")
        return value
