"""The runtime's vocabularies: where the workers run, and how the rounds of a pass end.

Kept apart from the modules that act on them so that the command line can offer
their spellings without importing the runtime.  ``brain.vocabulary`` says what a
vocabulary is; the math's own (Merge, Loss, Optimizer …) live in ``brain``.
"""

from __future__ import annotations

from brain.vocabulary import Vocabulary


class ExecutorName(Vocabulary):
    """The ``Executor`` setting: which executor runs the steps (``actors.executors.make_executor``)."""

    INLINE = "inline"
    THREAD = "thread"
    PROCESS = "process"
    PROCESSPOOL = "processpool"
    RAY = "ray"


class Rounds(Vocabulary):
    """Sync: a barrier per round, as the thesis (``actors.coordinator``); Async: none (``async_rounds``)."""

    SYNC = "Sync"
    ASYNC = "Async"
