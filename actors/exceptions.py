"""What a user sees when a structured-concurrency scope fails: one error, and where a pass got to."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import anyio

from brain.errors import UserError

if TYPE_CHECKING:
    from actors.outcome import PassOutcome


class PassHalted(UserError):
    """A pass cannot go on, but its whole rounds stand (e.g. no machine is left to take a worker).

    ``run_pass`` sets ``outcome`` to where the pass got to, with main as after its last
    whole round, as an interrupt leaves them: the runner saves a checkpoint there
    before the error ends the run.
    """

    outcome: PassOutcome | None = None


@contextmanager
def single_error() -> Iterator[None]:
    """Re-raise an exception group from a task group as its first real error.

    Cancellations are siblings' reactions to that error, not errors of their own,
    so the first exception that is not a cancellation is raised alone (with the
    group as its context for debugging).
    """
    try:
        yield
    except BaseExceptionGroup as group:
        leaves = list(_leaves(group))
        cancelled = anyio.get_cancelled_exc_class()
        real = [leaf for leaf in leaves if not isinstance(leaf, cancelled)]
        raise (real or leaves)[0] from None


def _leaves(error: BaseException) -> Iterator[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _leaves(inner)
    else:
        yield error
