"""The connectome: every weight of a network in one contiguous float64 buffer.

One buffer means a replica is copied, merged, placed in shared memory and saved
as a single array; ``matrices`` are views into it, one per pair of layers, with
rows for the neurons below (bias last) and columns for the neurons above.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brain.layout import Layout

DEFAULT_SEED = 42


@dataclass(frozen=True, eq=False)
class Connectome:
    """A layout and the flat buffer of its weights (the buffer's contents change, the object does not)."""

    layout: Layout
    weights: np.ndarray

    def __post_init__(self) -> None:
        if self.weights.shape != (self.layout.n_weights,) or self.weights.dtype != np.float64:
            raise ValueError(
                f"weights must be float64 of shape ({self.layout.n_weights},), "
                f"got {self.weights.dtype} {self.weights.shape}"
            )

    @classmethod
    def uniform(
        cls, layout: Layout, low: float = -1.0, high: float = 1.0, seed: int = DEFAULT_SEED
    ) -> Connectome:
        """Initial weights uniform in [low, high] from a seeded generator (the thesis used seed 42)."""
        rng = np.random.default_rng(seed)
        return cls(layout, rng.uniform(low, high, layout.n_weights))

    @classmethod
    def zeros(cls, layout: Layout) -> Connectome:
        return cls(layout, np.zeros(layout.n_weights))

    @property
    def matrices(self) -> tuple[np.ndarray, ...]:
        """One writable ``(rows below incl. bias, neurons above)`` view per weight matrix."""
        offsets = self.layout.weight_offsets
        return tuple(
            self.weights[start:stop].reshape(shape)
            for start, stop, shape in zip(offsets[:-1], offsets[1:], self.layout.weight_shapes, strict=True)
        )

    def copy(self) -> Connectome:
        return Connectome(self.layout, self.weights.copy())

    def is_finite(self) -> bool:
        return bool(np.isfinite(self.weights).all())
