"""What a data set's target columns mean for a network with ``n_outputs`` output neurons.

The thesis' rule: one target column and more than one output neuron -> "index" (the
value is the class, one-hot encoded in training); as many target columns as output
neurons -> "direct" (the values are the targets); anything else is an error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brain.data.dataset import Dataset
from brain.errors import DataError


@dataclass(frozen=True)
class Targets:
    """Exactly one of the two forms is filled.

    ``labels``: ``int64 (N,)`` class indices ("index"), shape ``(0,)`` when direct.
    ``direct``: ``float64 (N, n_outputs)`` target values, shape ``(0, n_outputs)``
    when index.
    """

    labels: np.ndarray
    direct: np.ndarray

    @property
    def is_direct(self) -> bool:
        return len(self.direct) > 0


def interpret_targets(dataset: Dataset, n_outputs: int) -> Targets:
    """Read ``dataset.targets`` as class indices or as direct targets (see module doc).

    Raises ``DataError`` naming the file when the number of target columns fits
    neither form, and naming the record (its CSV line, its IDX record number) of the
    first class index that is not an integer in ``[0, n_outputs)``.  Raises
    ``ValueError`` (a bug) for ``n_outputs < 1``.
    """
    if n_outputs < 1:
        raise ValueError(f"a network has at least one output neuron, got {n_outputs}")
    n_targets = dataset.targets.shape[1]
    if n_targets == 1 and n_outputs > 1:
        return Targets(
            labels=_class_indices(dataset, n_outputs),
            direct=np.empty((0, n_outputs), np.float64),
        )
    if n_targets == n_outputs:
        return Targets(
            labels=np.empty(0, np.int64),
            direct=np.ascontiguousarray(dataset.targets, dtype=np.float64),
        )
    raise DataError(
        f"{n_targets} target columns do not fit a network with {n_outputs} output neurons",
        where=dataset.source,
        allowed=f"1 target column holding the class (index) or {n_outputs} target columns"
        " (direct)",
    )


def _class_indices(dataset: Dataset, n_outputs: int) -> np.ndarray:
    values = dataset.targets[:, 0]
    valid = (values >= 0) & (values < n_outputs)
    if not np.issubdtype(values.dtype, np.integer):
        valid &= values == np.floor(values)
    if not valid.all():
        record = int(np.argmin(valid))
        raise DataError(
            f"record {record + 1}: target {values[record]} is not a class index",
            where=dataset.source,
            line=record + 1,
            allowed=f"integers 0..{n_outputs - 1}",
        )
    return values.astype(np.int64)
