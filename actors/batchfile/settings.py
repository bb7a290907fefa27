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
import os
import re
from collections.abc import Callable
from dataclasses import Field, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from actors.vocabulary import ExecutorName, RayPlacement, Rounds
from brain.activations import DEFAULT_ELU_ALPHA
from brain.errors import shorten
from brain.hyper import Merge, Semantics
from brain.modern import Init, Loss, Modern, Optimizer, Precision, Schedule, ScheduleKind, Update
from brain.preprocessing import PreProcessing
from brain.vocabulary import Vocabulary


@dataclass(frozen=True)
class Value:
    """How a directive's text becomes a typed value (``parse`` raises ``ValueError`` saying why)."""

    parse: Callable[[str], Any]
    allowed: str


PATH_MAX = os.pathconf("/", "PC_PATH_MAX")  # bytes; a longer name cannot be opened
_INTEGER = re.compile(r"[+-]?\d+")
_MAX_DIGITS = 1000


def _integer(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not _INTEGER.fullmatch(text):
            raise ValueError(f"{shorten(text)!r} is not an integer")
        if len(text.lstrip("+-").lstrip("0")) > _MAX_DIGITS:  # int() would refuse with a message for us
            raise ValueError(f"{shorten(text)} is far too large")
        number = int(text)
        if number < minimum:
            raise ValueError(f"{shorten(str(number))} is below {minimum}")
        if maximum is not None and number > maximum:
            raise ValueError(f"{shorten(text)} is above {maximum}")
        return number

    return parse


def _real(above: float | None = None, at_least: float | None = None) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{shorten(text)!r} is not a number") from None
        if not math.isfinite(number) or "_" in text:
            raise ValueError(f"{shorten(text)!r} is not a finite number")
        if above is not None and number <= above:
            raise ValueError(f"{number} must be greater than {above}")
        if at_least is not None and number < at_least:
            raise ValueError(f"{number} is below {at_least}")
        return number

    return parse


def _path(text: str) -> Path:
    # Relative paths are completed by the parser, which knows the batch file's folder.
    if "\0" in text:
        raise ValueError(f"{shorten(text)!r} contains a NUL character")
    if len(os.fsencode(text)) > PATH_MAX:
        raise ValueError(f"{shorten(text)!r} is longer than a path can be ({PATH_MAX} bytes)")
    try:
        return Path(text).expanduser()
    except RuntimeError:  # '~name' of a user this system does not know
        raise ValueError(f"cannot find the home folder of {shorten(text.split('/', 1)[0])!r}") from None


_SWITCHES = {"on": True, "true": True, "yes": True, "off": False, "false": False, "no": False}


def _switch(text: str) -> bool:
    try:
        return _SWITCHES[text.lower()]
    except KeyError:
        raise ValueError(f"{shorten(text)!r} is not a switch") from None


def _capacity(text: str) -> float | None:
    lowered = text.lower()
    if lowered == "unbounded":
        return math.inf
    if lowered == "parallel":
        return None
    return _integer(0)(text)


def _ray_address(text: str) -> str:
    if text.lower() in ("local", "auto"):
        return text.lower()
    host, colon, port = text.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{shorten(text)!r} is not local, auto or host:port")
    return text


def _preprocessing(text: str) -> PreProcessing:
    try:
        return PreProcessing.parse(text)
    except KeyError:
        raise ValueError(f"unknown pre-processing {shorten(text)!r}") from None


def _member_of(vocabulary: type[Vocabulary], what: str = "value") -> Value:
    """A member of ``vocabulary``, named in any letter case; the allowed values are its spellings."""

    def parse(text: str) -> Vocabulary:
        try:
            return vocabulary(text)
        except ValueError:
            raise ValueError(f"unknown {what} {shorten(text)!r}") from None

    return Value(parse, ", ".join(vocabulary.spellings()))


def _interval(low: float, high: float, *, low_open: bool, high_open: bool) -> Value:
    """A finite number between ``low`` and ``high``, each end open or closed."""
    real = _real()

    def parse(text: str) -> float:
        number = real(text)
        if (number <= low if low_open else number < low) or (number >= high if high_open else number > high):
            raise ValueError(f"{number} is out of range")
        return number

    brackets = ("(" if low_open else "[", ")" if high_open else "]")
    return Value(parse, f"a number in {brackets[0]}{low:g}, {high:g}{brackets[1]}")


POSITIVE_INT = Value(_integer(1), "an integer ≥ 1")
NON_NEGATIVE_INT = Value(_integer(0), "an integer ≥ 0")
# The persistence file keeps the seed as int64 (numpy's generators would take any size).
SEED_MAX = 2**63 - 1
SEED = Value(_integer(0, SEED_MAX), f"an integer from 0 to {SEED_MAX} (2⁶³ − 1)")
REAL = Value(_real(), "a finite number, e.g. 0.8, -0.1 or 1e-7")
POSITIVE_REAL = Value(_real(above=0.0), "a finite number > 0")
NON_NEGATIVE_REAL = Value(_real(at_least=0.0), "a finite number ≥ 0")
PATH = Value(_path, "a file path, absolute or relative to the batch file's folder")
SWITCH = Value(_switch, ", ".join(_SWITCHES))
CAPACITY = Value(_capacity, "an integer ≥ 0, unbounded, or Parallel (capacity = Parallel)")
EXECUTOR = _member_of(ExecutorName, "executor")
PREPROCESSING = Value(_preprocessing, ", ".join(PreProcessing.spellings()))
# The modern semantics (issue 5); defaults keep the thesis' behaviour.
SEMANTICS = _member_of(Semantics)
LOSS = _member_of(Loss)
INIT = _member_of(Init)
OPTIMIZER = _member_of(Optimizer)
SCHEDULE = _member_of(ScheduleKind)
UPDATE = _member_of(Update)
PRECISION = _member_of(Precision)
MERGE = _member_of(Merge)
ROUNDS = _member_of(Rounds)
DECAY = _interval(0.0, 1.0, low_open=False, high_open=True)
FACTOR = _interval(0.0, 1.0, low_open=True, high_open=False)
RAY_ADDRESS = Value(_ray_address, "local, auto, or host:port of a Ray head (e.g. 10.0.0.1:6379)")
RAY_PLACEMENT = _member_of(RayPlacement)


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
        return default.spelling
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
        "Seed", SEED, "seed of the initial weights and of the shuffle"))
    shuffle: bool = field(default=True, metadata=directive(
        "Shuffle", SWITCH, "shuffle the training data every epoch"))
    data_capacity: float | None = field(default=None, metadata=directive(
        "DataChannelCapacity", CAPACITY, "buffer of the data channel", default_text="Parallel"))
    output_capacity: float | None = field(default=None, metadata=directive(
        "OutputChannelCapacity", CAPACITY, "buffer of the output channel", default_text="Parallel"))
    executor: ExecutorName = field(default=ExecutorName.PROCESS, metadata=directive(
        "Executor", EXECUTOR, "where the workers run"))
    pin_processes: bool = field(default=True, metadata=directive(
        "PinProcesses", SWITCH, "Executor process: pool process i runs on CPU i alone"))
    batch_scheduling: bool = field(default=True, metadata=directive(
        "BatchScheduling", SWITCH,
        "Executor process: pool processes are CPU-bound batch work (Linux SCHED_BATCH): waking one "
        "does not preempt the coordinator"))
    ray_address: str = field(default="local", metadata=directive(
        "RayAddress", RAY_ADDRESS, "where Executor ray runs: a private instance, or a `ray start` cluster"))
    ray_placement: RayPlacement = field(default=RayPlacement.SPREAD, metadata=directive(
        "RayPlacement", RAY_PLACEMENT, "Executor ray: workers on as many nodes as possible, or on as few"))
    elu_alpha: float = field(default=DEFAULT_ELU_ALPHA, metadata=directive(
        "ELUAlpha", POSITIVE_REAL, "alpha of the ELU activation"))
    # Modern semantics: each is checked at its Train line (actors/batchfile/parse.py).
    semantics: Semantics = field(default=Semantics.THESIS, metadata=directive(
        "Semantics", SEMANTICS, "Thesis: the program's math, bit for bit; Modern: textbook math"))
    loss: Loss = field(default=Loss.QUADRATIC, metadata=directive(
        "Loss", LOSS, "Modern: loss; CrossEntropy needs a SoftMax or Logistic output layer"))
    lambda_l1: float | None = field(default=None, metadata=directive(
        "LambdaL1", NON_NEGATIVE_REAL, "Modern: factor of Σ abs(w) in the loss", default_text="Lambda"))
    lambda_l2: float | None = field(default=None, metadata=directive(
        "LambdaL2", NON_NEGATIVE_REAL, "Modern: factor of Σw² in the loss", default_text="Lambda"))
    bias: bool = field(default=True, metadata=directive(
        "Bias", SWITCH, "Modern: off = no bias neurons"))
    init: Init = field(default=Init.UNIFORM, metadata=directive(
        "Init", INIT, "initial weights: Uniform in [MinWeight, MaxWeight], or scaled to the fan-in"))
    optimizer: Optimizer = field(default=Optimizer.SGD, metadata=directive(
        "Optimizer", OPTIMIZER, "Modern: how a gradient changes the weights"))
    momentum: float = field(default=0.9, metadata=directive(
        "Momentum", DECAY, "Modern: velocity decay of Momentum and Nesterov"))
    beta1: float = field(default=0.9, metadata=directive(
        "Beta1", DECAY, "Modern: first-moment decay of Adam and NAdam"))
    beta2: float = field(default=0.999, metadata=directive(
        "Beta2", DECAY, "Modern: second-moment decay of Adam and NAdam"))
    epsilon: float = field(default=1e-8, metadata=directive(
        "Epsilon", POSITIVE_REAL, "Modern: ε of AdaGrad, RMSProp, Adam, NAdam, AdaDelta"))
    rho: float = field(default=0.95, metadata=directive(
        "Rho", DECAY, "Modern: decay of the running averages of RMSProp and AdaDelta"))
    schedule: ScheduleKind = field(default=ScheduleKind.CONSTANT, metadata=directive(
        "LearningRateSchedule", SCHEDULE, "learning rate per epoch; Plateau: cut when the test error stalls"))
    step_every: int = field(default=3, metadata=directive(
        "StepEvery", POSITIVE_INT, "Step schedule: epochs between cuts"))
    step_factor: float = field(default=0.5, metadata=directive(
        "StepFactor", FACTOR, "Step schedule: factor of each cut"))
    cosine_epochs: int = field(default=10, metadata=directive(
        "CosineEpochs", POSITIVE_INT, "Cosine schedule: epochs from the full rate to near 0"))
    plateau_patience: int = field(default=2, metadata=directive(
        "PlateauPatience", POSITIVE_INT, "Plateau schedule: epochs in a row whose test error is no new best"))
    plateau_factor: float = field(default=0.5, metadata=directive(
        "PlateauFactor", FACTOR, "Plateau schedule: factor of each cut"))
    update: Update = field(default=Update.ONLINE, metadata=directive(
        "Update", UPDATE, "Modern: Online = one step per line; MiniBatch = one per MiniBatch lines"))
    minibatch: int = field(default=100, metadata=directive(
        "MiniBatch", POSITIVE_INT, "Modern: lines per gradient with Update: MiniBatch"))
    precision: Precision = field(default=Precision.FLOAT64, metadata=directive(
        "Precision", PRECISION, "Modern mini-batches: dtype of the matrix products"))
    merge: Merge = field(default=Merge.HARMONIC, metadata=directive(
        "Merge", MERGE, "how replicas' changes join the main network: the thesis' 1/k, the mean, the sum"))
    rounds: Rounds = field(default=Rounds.SYNC, metadata=directive(
        "Rounds", ROUNDS, "Sync: a barrier per round (thesis); Async: a worker gets its next slice at once"))
    # fmt: on

    @property
    def effective_data_capacity(self) -> float:
        """The data channel's capacity: Parallel unless set (math.inf when unbounded)."""
        return self.parallel if self.data_capacity is None else self.data_capacity

    @property
    def effective_output_capacity(self) -> float:
        """The output channel's capacity: Parallel unless set (math.inf when unbounded)."""
        return self.parallel if self.output_capacity is None else self.output_capacity

    @property
    def effective_lambda_l1(self) -> float:
        """The L1 factor: LambdaL1 when set, else Lambda."""
        return self.lambda_ if self.lambda_l1 is None else self.lambda_l1

    @property
    def effective_lambda_l2(self) -> float:
        """The L2 factor: LambdaL2 when set, else Lambda."""
        return self.lambda_ if self.lambda_l2 is None else self.lambda_l2

    @property
    def is_modern(self) -> bool:
        return self.semantics is Semantics.MODERN

    def modern_hyper(self) -> Modern:
        """The hyper-parameters of a modern step (the learning rate before any schedule)."""
        return Modern(
            learning_rate=self.learning_rate,
            loss=self.loss,
            lambda_l1=self.effective_lambda_l1,
            lambda_l2=self.effective_lambda_l2,
            optimizer=self.optimizer,
            momentum=self.momentum,
            beta1=self.beta1,
            beta2=self.beta2,
            epsilon=self.epsilon,
            rho=self.rho,
            minibatch=self.minibatch if self.update is Update.MINI_BATCH else 1,
            precision=self.precision,
            preprocessing=self.preprocessing,
            elu_alpha=self.elu_alpha,
        )

    def learning_rate_schedule(self) -> Schedule:
        return Schedule(
            self.schedule,
            step_every=self.step_every,
            step_factor=self.step_factor,
            cosine_epochs=self.cosine_epochs,
            plateau_patience=self.plateau_patience,
            plateau_factor=self.plateau_factor,
        )

    def with_value(self, name: str, value: Any) -> Settings:
        return replace(self, **{name: value})

    def written(self, folder: Path | None = None) -> dict[str, str]:
        """Every setting as a batch file's line would give it, ``{"WorkerBatch": "100", …}``; with
        ``folder``, paths relative to it (``train.csv``, ``../data/train.csv``)."""
        values = {d.key: getattr(self, d.field) for d in DIRECTIVES}
        if folder is not None:
            values = {k: os.path.relpath(v, folder) if isinstance(v, Path) else v for k, v in values.items()}
        return {key: _show(value) for key, value in values.items()}


def _directive_of(f: Field) -> Directive:
    d = f.metadata["directive"]
    return replace(d, field=f.name, default_text=d.default_text or _show(f.default))


DIRECTIVES: tuple[Directive, ...] = tuple(_directive_of(f) for f in fields(Settings))
