"""Optimizer state of the replicas: one stack per state array, saved beside the weights.

Every replica keeps its own state (it is not merged: a merge moves weights only)
as row ``r`` of a ``(replicas, n_weights)`` float64 stack per state name, and its
own step count as ``steps[r]``; row views are what ``train_modern`` takes
(``{name: stack[r] ...}`` and ``steps[r : r + 1]``).  In the persistence file the
stacks are ``opt_<name>`` and the steps ``opt_step`` (float64, exact to 2⁵³).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from brain.modern.hyper import Optimizer, optimizer_state_names

STEP_KEY = "step"


def replica_state(
    optimizer: Optimizer | str, replicas: int, n_weights: int, saved: Mapping[str, np.ndarray] | None = None
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """State stacks ``(replicas, n_weights)`` per name and steps ``(replicas,)`` int64.

    Fresh (zeros) without ``saved``.  With ``saved`` (``Persisted.extra`` of an earlier
    run): stacks of the same number of replicas are taken row for row; otherwise
    every replica starts from the mean over the saved rows, and from their largest
    step count.  A name the saved run did not keep (another optimizer, or none)
    starts at zero, and so do the steps then.
    """
    names = optimizer_state_names(optimizer)
    stacks = {name: np.zeros((replicas, n_weights)) for name in names}
    steps = np.zeros(replicas, np.int64)
    if not saved or not all(name in saved for name in names):
        return stacks, steps
    for name in names:
        rows = np.atleast_2d(np.asarray(saved[name], np.float64))
        if rows.shape[1] != n_weights:
            raise ValueError(f"saved state {name!r} has {rows.shape[1]} weights, the network {n_weights}")
        stacks[name][:] = rows if len(rows) == replicas else rows.mean(axis=0)
    if STEP_KEY in saved:
        saved_steps = np.atleast_1d(np.asarray(saved[STEP_KEY])).astype(np.int64)
        steps[:] = saved_steps if len(saved_steps) == replicas else saved_steps.max()
    return stacks, steps


def state_to_save(stacks: Mapping[str, np.ndarray], steps: np.ndarray) -> dict[str, np.ndarray]:
    """What goes into ``Persisted.extra``: every stack, and the steps as float64 under ``step``."""
    return {
        **{name: np.array(stack, np.float64) for name, stack in stacks.items()},
        STEP_KEY: steps.astype(np.float64),
    }
