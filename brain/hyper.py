"""The settings that shape the math: which math, the thesis' parameters of a step, and how a round's
reports are merged (the kernels of the merge are ``brain.merge``'s)."""

from __future__ import annotations

from dataclasses import dataclass

from brain.activations import DEFAULT_ELU_ALPHA
from brain.preprocessing import PreProcessing
from brain.vocabulary import Vocabulary


class Semantics(Vocabulary):
    """Thesis: the program's math, bit for bit (``brain.kernels``); Modern: textbook math (``modern``)."""

    THESIS = "Thesis"
    MODERN = "Modern"

    @property
    def recorded(self) -> str:
        """The spelling of the result table, the JSON log and the persistence file: thesis, modern."""
        return self.value.lower()


class Merge(Vocabulary):
    """How the reports of a round join the main connectome (see ``brain.merge.merge_divisor``)."""

    HARMONIC = "Harmonic"
    MEAN = "Mean"
    SUM = "Sum"


@dataclass(frozen=True)
class Hyper:
    """Learning rate, elastic-net lambda, input pre-processing and the ELU alpha.

    The defaults are those of the thesis program (learning rate 1, lambda 1).
    """

    learning_rate: float = 1.0
    lambda_: float = 1.0
    preprocessing: PreProcessing = PreProcessing.NONE
    elu_alpha: float = DEFAULT_ELU_ALPHA
