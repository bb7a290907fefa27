"""Pre-processing of the input layer, as the thesis program did it."""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class PreProcessing(IntEnum):
    """Codes; the names are the batch-file spellings (MeanSubstraction is the thesis' own)."""

    NONE = 0
    Proportional = 1
    MeanSubtraction = 2

    @classmethod
    def parse(cls, text: str) -> PreProcessing:
        """Case-insensitive; accepts ``None`` and the thesis spelling ``MeanSubstraction``."""
        wanted = text.strip().lower()
        aliases = {
            "none": cls.NONE,
            "proportional": cls.Proportional,
            "meansubtraction": cls.MeanSubtraction,
            "meansubstraction": cls.MeanSubtraction,
        }
        if wanted not in aliases:
            raise KeyError(text)
        return aliases[wanted]

    @classmethod
    def spellings(cls) -> tuple[str, ...]:
        return ("None", "Proportional", "MeanSubtraction", "MeanSubstraction")

    @property
    def spelling(self) -> str:
        """As batch files, the README and persistence files write it (``NONE`` is ``None``)."""
        return self.spellings()[self]


def preprocess(kind: PreProcessing, x: np.ndarray) -> np.ndarray:
    """Applied to one sample's input neurons (not the bias).

    Proportional divides by the maximum (left alone when the maximum is 0);
    MeanSubtraction subtracts the midrange (max+min)/2 - not the mean - as the
    program did.
    """
    x = np.asarray(x, dtype=np.float64)
    if kind == PreProcessing.NONE:
        return x.copy()
    if kind == PreProcessing.Proportional:
        top = x.max()
        return x / top if top != 0 else x.copy()
    if kind == PreProcessing.MeanSubtraction:
        return x - (x.max() + x.min()) / 2.0
    raise ValueError(kind)
