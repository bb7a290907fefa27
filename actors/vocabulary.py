"""The runtime's vocabularies: where the workers run, how Ray places them, and how the rounds of a pass end.

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


class RayPlacement(Vocabulary):
    """The ``RayPlacement`` setting: how ``Executor: ray`` lays its workers' actors over a cluster's nodes.

    ``spread``: on as many nodes as there are, so that each worker has a machine's cores and
    memory bandwidth to itself as far as they go; ``pack``: on as few as possible, so that
    fewer steps cross the network (``actors.executors.ray_placement``).
    """

    SPREAD = "spread"
    PACK = "pack"


class Rounds(Vocabulary):
    """Sync: a barrier per round, as the thesis (``actors.coordinator``); Async: none (``async_rounds``)."""

    SYNC = "Sync"
    ASYNC = "Async"
