"""The harness the ``test_fuzz_*`` modules share, and tests that it can fail.

Every fuzz target asserts one contract: for any input, a parser or loader either
returns a valid result or raises the project's own ``UserError`` (a subclass) with a
non-empty message -- no other exception, no hang, no memory beyond what the input
really holds.

Budget.  ``FUZZ_EXAMPLES`` examples per target (default 100: the whole fuzz suite
runs in well under 30 s), drawn from a fixed seed, so CI always runs the same
inputs.  The long campaign, at least 10,000 examples per target::

    FUZZ_EXAMPLES=10000 python -m pytest tests/test_fuzz_*.py -q

``FUZZ_SEED=n`` draws other inputs (reproducible for the same n); a failure prints
the smallest input hypothesis found, ready to paste into an ``@example``.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import hypothesis
import pytest
from hypothesis import HealthCheck
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from brain.errors import UserError

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
SEED = int(os.environ.get("FUZZ_SEED", "0"))
# A hang is a bug; one example of these small inputs takes milliseconds.
HANG_SECONDS = 60
SLOW_MILLISECONDS = 2000
# Interpreter and library bookkeeping that any call may allocate, whatever the input.
BASE_BYTES = 2 * 2**20


def fuzz(test: Callable) -> Callable:
    """``@fuzz`` under ``@given``: the suite's budget, seed, deadline and health checks."""
    test = hypothesis.settings(
        max_examples=EXAMPLES,
        derandomize=SEED == 0,
        database=None,
        deadline=SLOW_MILLISECONDS,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )(test)
    return hypothesis.seed(SEED)(test) if SEED else test


def junk_text(max_size: int = 40) -> st.SearchStrategy[str]:
    """Text no one meant: any unicode, binary junk decoded two ways, very long runs."""
    return st.one_of(
        st.text(max_size=max_size),
        st.binary(max_size=max_size).map(lambda raw: raw.decode("utf-8", "surrogateescape")),
        st.binary(max_size=max_size).map(lambda raw: raw.decode("latin-1")),
        st.tuples(st.sampled_from("9a ,:;#~\x00\u2028é"), st.integers(1_000, 20_000)).map(
            lambda run: run[0] * run[1]
        ),
    )


def file_bytes(texts: st.SearchStrategy[str], junk_size: int = 300) -> st.SearchStrategy[bytes]:
    """What a file of ``texts`` may really hold: their UTF-8 (lone surrogates kept), or junk."""
    return st.one_of(st.binary(max_size=junk_size), texts.map(lambda t: t.encode("utf-8", "surrogatepass")))


def outcome(call: Callable[[], Any]) -> Any:
    """``call()``'s result, or ``None`` if it raised a ``UserError`` with a message.

    Any other exception propagates (and fails the example).  A call that runs
    longer than ``HANG_SECONDS`` ends the test process with every thread's
    traceback: a hang cannot be interrupted from Python when it sits in C code.
    """
    with _watchdog(HANG_SECONDS):
        try:
            result = call()
        except UserError as error:
            assert str(error).strip(), f"{type(error).__name__} without a message"
            assert error.message.strip(), f"{type(error).__name__} without a message"
            _count(type(error).__name__)
            return None
    _count("a valid result")
    return result


def _count(what: str) -> None:
    """Tally the outcome (``pytest --hypothesis-show-statistics`` lists them)."""
    if currently_in_test_context():
        hypothesis.event(f"outcome: {what}")


def peak_bytes(call: Callable[[], Any]) -> tuple[Any, int]:
    """``(outcome(call), the most memory Python and numpy held during the call)``."""
    peak = 0

    def traced() -> Any:
        # Inside the watchdog: its thread must not start or end while tracemalloc stops
        # (Python 3.11 can crash then, CPython issue 128679).
        nonlocal peak
        tracemalloc.start()
        try:
            return call()
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()

    return outcome(traced), peak


@contextlib.contextmanager
def _watchdog(seconds: float) -> Iterator[None]:
    faulthandler.dump_traceback_later(seconds, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


# --- the harness can fail -----------------------------------------------------


def test_a_user_error_is_an_allowed_outcome():
    def refuse():
        raise UserError("bad line", where="f.txt", line=3)

    assert outcome(refuse) is None


def test_a_foreign_exception_fails_the_example():
    def crash():
        raise KeyError("not a user error")

    with pytest.raises(KeyError):
        outcome(crash)


def test_a_user_error_without_a_message_fails_the_example():
    def mute():
        raise UserError("  ")

    with pytest.raises(AssertionError, match="without a message"):
        outcome(mute)


def test_peak_bytes_sees_a_numpy_allocation():
    import numpy as np

    _, peak = peak_bytes(lambda: np.ones(10 * 2**20, np.uint8).sum())
    assert peak >= 10 * 2**20
