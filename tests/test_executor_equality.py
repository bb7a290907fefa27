"""Every executor trains the very weights of the inline one at Parallel 1, and tests the same counts.

With one worker there is no order of arrival to vary: every executor runs the same
step on the same lines, so the weights must be equal bit for bit.  Ray is an optional
extra: without it its case is skipped.
"""

from __future__ import annotations

import numpy as np
import pytest
from actor_helpers import mnist_subset
from test_executors import IDENTITY_LINES, TEST_LINES, train_then_test

from actors.executors.executor import EXECUTORS


@pytest.fixture(scope="module")
def subset(mnist_dir):
    return mnist_subset(mnist_dir, IDENTITY_LINES, TEST_LINES)


OTHERS = [
    pytest.param(name, marks=pytest.mark.slow) if name == "ray" else name
    for name in EXECUTORS
    if name != "inline"
]


@pytest.mark.asyncio
@pytest.mark.parametrize("name", OTHERS)
async def test_an_executor_trains_and_tests_as_inline_does_at_parallel_1(name, subset) -> None:
    if name == "ray":
        pytest.importorskip("ray")
    inline = await train_then_test("inline", 1, subset, IDENTITY_LINES)
    other = await train_then_test(name, 1, subset, IDENTITY_LINES)
    assert not np.array_equal(inline.weights, inline.initial)
    assert np.array_equal(other.weights, inline.weights)
    assert (other.correct, other.error_sum, other.test_lines) == (
        inline.correct,
        inline.error_sum,
        TEST_LINES,
    )
