"""A data set in memory: one row of inputs and one row of targets per sample."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Dataset:
    """Samples as two aligned matrices; the loaders hand out read-only arrays.

    ``inputs`` is ``(N, n_inputs)``, C-contiguous, ``uint8`` when every input value is
    an integer 0..255 (always for IDX) and ``float64`` otherwise.  ``targets`` is
    ``(N, n_targets)``: IDX labels as ``(N, 1)`` ``uint8``, CSV target columns as
    ``float64``.  Record ``k`` (1-based) of a CSV file is its line ``k``; of an IDX
    file, its ``k``-th image.  ``source`` names the file in messages.

    Raises ``ValueError`` (a bug, not a user error) if the matrices are not 2-D or
    their row counts differ.
    """

    inputs: np.ndarray
    targets: np.ndarray
    source: str

    def __post_init__(self) -> None:
        if self.inputs.ndim != 2 or self.targets.ndim != 2:
            raise ValueError(
                f"inputs and targets must be 2-D, got {self.inputs.shape} and {self.targets.shape}"
            )
        if len(self.inputs) != len(self.targets):
            raise ValueError(f"{len(self.inputs)} input rows but {len(self.targets)} target rows")
        object.__setattr__(self, "inputs", np.ascontiguousarray(self.inputs))
        object.__setattr__(self, "targets", np.ascontiguousarray(self.targets))

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def n_inputs(self) -> int:
        return self.inputs.shape[1]

    @property
    def n_targets(self) -> int:
        return self.targets.shape[1]
