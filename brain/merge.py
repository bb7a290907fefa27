"""Merging worker replicas into the main connectome after a round.

The thesis program, on the k-th outstanding report of a round (k = n, n-1, …, 1 in
order of arrival), did ``main += (replica - state) / k``: the first finisher's change
is divided by n and the last one's by 1, so the factors sum to the harmonic number
H(n), not to 1: ``add_change`` with the divisor k.  The last merge of a round also
takes the next round's snapshot (``add_change_and_snapshot``): one pass over the
weights instead of two.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from brain.hyper import Merge  # its home is numba-free, for what only reads settings

__all__ = ["Merge", "add_change", "add_change_and_snapshot", "merge_divisor", "warm_up"]


@njit(cache=True, nogil=True)
def _add_scaled_change(main, replica, state, k):
    for i in range(main.shape[0]):
        main[i] += (replica[i] - state[i]) / k


@njit(cache=True, nogil=True)
def _add_scaled_change_and_snapshot(main, replica, state, k):
    for i in range(main.shape[0]):
        main[i] += (replica[i] - state[i]) / k
        state[i] = main[i]


def add_change(main: np.ndarray, replica: np.ndarray, state: np.ndarray, divisor: float) -> None:
    """``main += (replica - state) / divisor`` in place: one report merged (see ``merge_divisor``)."""
    _add_scaled_change(main, replica, state, float(divisor))


def add_change_and_snapshot(main: np.ndarray, replica: np.ndarray, state: np.ndarray, divisor: float) -> None:
    """``add_change``, then ``state[:] = main``: a round's last merge and the next round's snapshot."""
    _add_scaled_change_and_snapshot(main, replica, state, float(divisor))


def warm_up() -> None:
    """Load both merge kernels (from numba's cache, or compile them) before anything is timed."""
    weights = np.zeros(2)
    add_change(weights, weights.copy(), weights.copy(), 1)
    add_change_and_snapshot(weights, weights.copy(), weights.copy(), 1)


def merge_divisor(kind: Merge, k: int, n: int) -> int:
    """What the k-th outstanding of n reports of a round is divided by before it is added.

    Harmonic: k, the thesis' weighting (the factors 1/k sum to H(n));
    Mean: n, model averaging (the factors sum to 1);
    Sum: 1, every replica's whole change, as if the slices had run one after another.
    Raises ``TypeError`` when ``kind`` is not a ``Merge`` member.
    """
    if kind is Merge.HARMONIC:  # called for every report: no table built, no enum hashed
        return k
    if kind is Merge.MEAN:
        return n
    if kind is Merge.SUM:
        return 1
    raise TypeError(f"expected a member of Merge, got {kind!r}")
