"""Every setting a batch file can change: its directive, its type, its default.

A setting is one entry of ``Settings``::

    parallel: int = field(default=1, metadata=directive(
        "Parallel", POSITIVE_INT, "workers, each with its own network replica"))

``directive`` keeps the key, the converter and the help text in the field's metadata;
the batch parser and the README table read them from there, so a new directive is
one new line here.  Defaults are those of the thesis program; the project's
additions default to what the program did (seed 42, shuffling on, channel
capacity = Parallel).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import Field, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from brain.activations import DEFAULT_ELU_ALPHA
from brain.preprocessing import PreProcessing

Executor = Literal["inline", "thread", "process", "ray"]
EXECUTORS: tuple[Executor, ...] = ("inline", "thread", "process", "ray")


@dataclass(frozen=True)
class Value:
    """How a directive's text becomes a typed value (``parse`` raises ``ValueError`` saying why)."""

    parse: Callable[[str], Any]
    allowed: str


_INTEGER = re.compile(r"[+-]?\d+")


def _integer(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not _INTEGER.fullmatch(text):
            raise ValueError(f"{text!r} is not an integer")
        number = int(text)
        if number < minimum:
            raise ValueError(f"{number} is below {minimum}")
        return number

    return parse


def _real(above: float | None = None, at_least: float | None = None) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
        if not math.isfinite(number) or "_" in text:
            raise ValueError(f"{text!r} is not a finite number")
        if above is not None and number <= above:
            raise ValueError(f"{number} must be greater than {above}")
        if at_least is not None and number < at_least:
            raise ValueError(f"{number} is below {at_least}")
        return number

    return parse


def _path(text: str) -> Path:
    # Relative paths are completed by the parser, which knows the batch file's folder.
    return Path(text).expanduser()


_SWITCHES = {"on": True, "true": True, "yes": True, "off": False, "false": False, "no": False}


def _switch(text: str) -> bool:
    try:
        return _SWITCHES[text.lower()]
    except KeyError:
        raise ValueError(f"{text!r} is not a switch") from None


def _capacity(text: str) -> float | None:
    lowered = text.lower()
    if lowered == "unbounded":
        return math.inf
    if lowered == "parallel":
        return None
    return _integer(0)(text)


def _executor(text: str) -> Executor:
    for name in EXECUTORS:
        if name == text.lower():
            return name
    raise ValueError(f"unknown executor {text!r}")


def _preprocessing(text: str) -> PreProcessing:
    try:
        return PreProcessing.parse(text)
    except KeyError:
        raise ValueError(f"unknown pre-processing {text!r}") from None


POSITIVE_INT = Value(_integer(1), "an integer ≥ 1")
NON_NEGATIVE_INT = Value(_integer(0), "an integer ≥ 0")
REAL = Value(_real(), "a finite number, e.g. 0.8, -0.1 or 1e-7")
POSITIVE_REAL = Value(_real(above=0.0), "a finite number > 0")
NON_NEGATIVE_REAL = Value(_real(at_least=0.0), "a finite number ≥ 0")
PATH = Value(_path, "a file path, absolute or relative to the batch file's folder")
SWITCH = Value(_switch, ", ".join(_SWITCHES))
CAPACITY = Value(_capacity, "an integer ≥ 0, unbounded, or Parallel (capacity = Parallel)")
EXECUTOR = Value(_executor, ", ".join(EXECUTORS))
PREPROCESSING = Value(_preprocessing, ", ".join(PreProcessing.spellings()))


@dataclass(frozen=True)
class Directive:
    """A batch-file key and the ``Settings`` field it sets (``field`` is filled in later)."""

    key: str
    value: Value
    help: str
    aliases: tuple[str, ...] = ()
    default_text: str | None = None
    field: str = ""


def directive(key: str, value: Value, help: str, **options: Any) -> dict[str, Directive]:
    """Field metadata: the ``Settings`` field is set by the batch-file line ``key: value``."""
    return {"directive": Directive(key, value, help, **options)}


def _show(default: Any) -> str:
    if default is None:
        return "—"
    if isinstance(default, bool):
        return "on" if default else "off"
    if isinstance(default, PreProcessing):
        return PreProcessing.spellings()[default]
    return str(default)


@dataclass(frozen=True)
class Settings:
    """Every setting in force at one line of a batch file."""

    # One entry per setting: field, type, default, and the directive that sets it.
    # fmt: off
    result_file: Path | None = field(default=None, metadata=directive(
        "ResultFile", PATH, "result table, one row appended per pass"))
    network_file: Path | None = field(default=None, metadata=directive(
        "NetworkFile", PATH, "network layout file"))
    persistence_file: Path | None = field(default=None, metadata=directive(
        "PersistenceFile", PATH, "weight store: read before each pass, written after training"))
    train_file: Path | None = field(default=None, metadata=directive(
        "TrainFile", PATH, "training data (IDX images or CSV)"))
    test_file: Path | None = field(default=None, metadata=directive(
        "TestFile", PATH, "test data (IDX images or CSV)"))
    train_labels: Path | None = field(default=None, metadata=directive(
        "TrainLabels", PATH, "IDX labels of TrainFile", default_text="derived from TrainFile"))
    test_labels: Path | None = field(default=None, metadata=directive(
        "TestLabels", PATH, "IDX labels of TestFile", default_text="derived from TestFile"))
    preprocessing: PreProcessing = field(default=PreProcessing.NONE, metadata=directive(
        "PreProcessing", PREPROCESSING, "input pre-processing (MeanSubstraction: thesis spelling)"))
    parallel: int = field(default=1, metadata=directive(
        "Parallel", POSITIVE_INT, "workers, each with its own network replica"))
    worker_batch: int = field(default=100, metadata=directive(
        "WorkerBatch", POSITIVE_INT, "lines handed to a worker per round"))
    learning_rate: float = field(default=1.0, metadata=directive(
        "LearningRate", POSITIVE_REAL, "learning rate"))
    lambda_: float = field(default=1.0, metadata=directive(
        "Lambda", NON_NEGATIVE_REAL, "elastic-net regularisation factor"))
    min_weight: float = field(default=-1.0, metadata=directive(
        "MinWeight", REAL, "lower bound of the uniform initial weights"))
    max_weight: float = field(default=1.0, metadata=directive(
        "MaxWeight", REAL, "upper bound of the uniform initial weights"))
    target_start: int = field(default=0, metadata=directive(
        "TargetColumnStart", NON_NEGATIVE_INT, "first target column of a CSV line",
        aliases=("TargetColumnsStart",)))
    target_end: int = field(default=1, metadata=directive(
        "TargetColumnEnd", NON_NEGATIVE_INT, "first column after the targets",
        aliases=("TargetColumnsEnd",)))
    seed: int = field(default=42, metadata=directive(
        "Seed", NON_NEGATIVE_INT, "seed of the initial weights and of the shuffle"))
    shuffle: bool = field(default=True, metadata=directive(
        "Shuffle", SWITCH, "shuffle the training data every epoch"))
    data_capacity: float | None = field(default=None, metadata=directive(
        "DataChannelCapacity", CAPACITY, "buffer of the data channel", default_text="Parallel"))
    output_capacity: float | None = field(default=None, metadata=directive(
        "OutputChannelCapacity", CAPACITY, "buffer of the output channel", default_text="Parallel"))
    executor: Executor = field(default="process", metadata=directive(
        "Executor", EXECUTOR, "where the workers run"))
    elu_alpha: float = field(default=DEFAULT_ELU_ALPHA, metadata=directive(
        "ELUAlpha", POSITIVE_REAL, "alpha of the ELU activation"))
    # fmt: on

    @property
    def effective_data_capacity(self) -> float:
        """The data channel's capacity: Parallel unless set (math.inf when unbounded)."""
        return self.parallel if self.data_capacity is None else self.data_capacity

    @property
    def effective_output_capacity(self) -> float:
        """The output channel's capacity: Parallel unless set (math.inf when unbounded)."""
        return self.parallel if self.output_capacity is None else self.output_capacity

    def with_value(self, name: str, value: Any) -> Settings:
        return replace(self, **{name: value})


def _directive_of(f: Field) -> Directive:
    d = f.metadata["directive"]
    return replace(d, field=f.name, default_text=d.default_text or _show(f.default))


DIRECTIVES: tuple[Directive, ...] = tuple(_directive_of(f) for f in fields(Settings))
