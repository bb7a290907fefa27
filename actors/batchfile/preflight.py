"""The pre-flight: everything a run could refuse, decided before its first pass.

``check`` prints what it finds; ``run`` calls it after taking its locks and before
its first pass, so that a run that would be refused is refused before anything is
trained.  For every pass it checks

* the files read — NetworkFile, TrainFile or TestFile and their labels, an existing
  PersistenceFile or ResultFile: each a regular file (not a FIFO, a device or a
  directory), readable, within its format's size cap, and fitting the network;
* the files written — PersistenceFile, ResultFile, the checkpoint an interrupted
  pass leaves beside the batch, their lock files, the log folder: each a regular
  file or absent, in a folder that exists or can be made and may be written
  (``brain.atomic``);
* that an existing ResultFile has the header this program writes, and that a
  PersistenceFile holds the network of every pass that uses it;
* that the pass' executor runs its semantics (Executor ray: the thesis' only);
* that the run fits in memory (``actors.batchfile.memory``), first with the data sets as their
  files declare them, before any is read, then with the data sets as read.

Every problem found is collected and raised together as one ``BatchError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from actors.batchfile import memory
from actors.batchfile.memory import PassShape
from actors.batchfile.parse import Batch, BatchError, Pass
from actors.batchfile.settings import Settings
from actors.console import short_path
from actors.records.checkpoints import SAME_SETTINGS, checkpoint_path, unfinished_epoch_problem
from actors.records.journal import LOG_FOLDER
from actors.records.lock import lock_path
from actors.records.results import table_text
from actors.vocabulary import ExecutorName
from brain.atomic import folder_problem, output_problem
from brain.data import Dataset, interpret_targets, load_dataset, read_size
from brain.errors import UserError
from brain.layout import Layout, load_layout, with_bias
from brain.persistence import Persisted, load_persistence, persistence_exists
from brain.user_files import input_problem

WRITABLE = "a regular file, or a new name in a folder this run may write to"
FITTING = "a smaller network or data set, fewer workers (Parallel), or more free memory"

DataKey = tuple[Path | None, Path | None, int, int]


def data_key(settings: Settings, training: bool) -> DataKey:
    """What identifies a pass' data set: its file, its labels file and its target columns."""
    s = settings
    path, labels = (s.train_file, s.train_labels) if training else (s.test_file, s.test_labels)
    return path, labels, s.target_start, s.target_end


@dataclass(frozen=True)
class Cleared:
    """A batch the pre-flight found nothing against.

    ``summaries`` has one line per pass, ``need`` the memory estimate and ``memory``
    that estimate in one line, ``datasets`` the data sets read (only when asked to
    keep them), for the runner to share rather than read again.
    """

    summaries: tuple[str, ...]
    need: memory.Need
    memory: str
    datasets: Mapping[DataKey, Dataset] = field(default_factory=dict)


def preflight(batch: Batch, *, log_dir: Path | None = None, keep_data: bool = False) -> Cleared:
    """Check ``batch`` (as loaded, overrides applied) against the files and the machine.

    ``log_dir``: the folder the run's JSON log goes to (None: no log).  Raises
    ``BatchError`` holding every problem, one line each; reads every data set once
    (keeping them in ``Cleared.datasets`` with ``keep_data``) unless the run is
    already known not to fit in memory.
    """
    return _Checker(batch, keep_data).run(log_dir)


@dataclass(frozen=True)
class _DataShape:
    """What a pass needs to know of a data set; its inputs are not kept unless asked to."""

    lines: int
    inputs: int  # values per line
    input_bytes: int
    targets: Dataset  # the targets, with no inputs


@dataclass(frozen=True)
class _Plan:
    """One pass as checked: its network (None: unreadable) and the name of its data set."""

    batch_pass: Pass
    layout: Layout | None
    data_name: str  # TrainFile or TestFile
    data: DataKey
    store: str  # what the summary says of the PersistenceFile


class _Checker:
    def __init__(self, batch: Batch, keep_data: bool) -> None:
        self.batch = batch
        self.keep_data = keep_data
        self.problems: list[UserError] = []
        self.layouts: dict[tuple[Path, bool], Layout | None] = {}
        self.read_sizes: dict[DataKey, int | None] = {}  # None: the data file is refused
        self.data: dict[DataKey, _DataShape | None] = {}
        self.datasets: dict[DataKey, Dataset] = {}
        # The layout each persistence file holds or will hold (None: unreadable).
        self.stores: dict[Path, Layout | None] = {}
        # The persistence files holding an unfinished epoch that no training pass has met yet.
        self.unfinished: dict[Path, Persisted] = {}
        self.outputs: set[Path] = set()
        self.heads: set[str] = set()  # Ray heads probed

    def run(self, log_dir: Path | None) -> Cleared:
        if log_dir is not None and (problem := folder_problem(log_dir)) is not None:
            self.problems.append(UserError(f"log files {problem}", where=log_dir, allowed=LOG_FOLDER))
        plans = [self.plan(p) for p in self.batch.passes]
        have = memory.available()
        data_bytes = {key: size for key, size in self.read_sizes.items() if size is not None}
        if self.fits(plans, data_bytes, have):  # else reading the data sets could exhaust the memory
            for plan in plans:
                self.dataset(plan)
            fitting = [(plan, shape) for plan in plans if (shape := self.shape(plan)) is not None]
            data_bytes = {plan.data: _shared_bytes(shape, plan.layout) for plan, shape in fitting}
            self.fits(plans, data_bytes, have)
        if self.problems:
            # A data file that does not fit is met again by every pass that reads it.
            unique = {str(problem): problem for problem in self.problems}
            raise BatchError(list(unique.values()))
        need = memory.estimate(_shapes(plans, data_bytes))
        summaries = tuple(self.summary(plan) for plan in plans)
        return Cleared(summaries, need, memory.describe(need, have), self.datasets)

    def problem(self, p: Pass, message: str, allowed: str | None = None) -> None:
        self.problems.append(UserError(message, where=p.where, line=p.line, allowed=allowed))

    # --- per pass, before any data set is read ----------------------------------

    def plan(self, p: Pass) -> _Plan:
        s = p.settings
        training = p.mode == "train"
        layout = self.layout(s.network_file, s.bias)
        data_name = "TrainFile" if training else "TestFile"
        key = data_key(s, training)
        self.data_file(p, data_name, key)
        self.executor(p)
        self.output(p, "PersistenceFile", s.persistence_file)
        if self.output(p, "ResultFile", s.result_file) and s.result_file is not None:
            self.result_table(s.result_file)
        if s.persistence_file is None:
            self.output(p, "the checkpoint an interrupted pass writes,", checkpoint_path(p, self.batch.path))
        return _Plan(p, layout, data_name, key, self.store(p, layout))

    def layout(self, path: Path | None, bias: bool) -> Layout | None:
        if path is None:
            return None
        if (path, bias) not in self.layouts:
            try:
                self.layouts[path, bias] = with_bias(load_layout(path), bias)
            except UserError as error:
                self.problems.append(error)
                self.layouts[path, bias] = None
        return self.layouts[path, bias]

    def data_file(self, p: Pass, name: str, key: DataKey) -> None:
        """The data file and its labels: regular files, and how many bytes reading them takes."""
        if key in self.read_sizes:
            return
        self.read_sizes[key] = None
        path, labels = key[:2]
        for what, file, allowed in ((name, path, "an existing data file"), ("labels file", labels, None)):
            problem = None if file is None else input_problem(file)
            if problem is not None:
                self.problem(p, f"{what} {file} {problem}", allowed or "an existing IDX labels file")
                return
        try:
            self.read_sizes[key] = read_size(path, labels_path=labels)
        except UserError as error:
            self.problems.append(error)

    def executor(self, p: Pass) -> None:
        if p.settings.executor is ExecutorName.RAY:
            from actors.executors.ray import refusal
            from actors.executors.ray_session import HEAD_ALLOWED, head_problem

            error = refusal()
            if error is not None:
                self.problem(p, error.message, error.allowed)
            elif (address := p.settings.ray_address) not in self.heads:  # each head once
                self.heads.add(address)
                if (problem := head_problem(address)) is not None:
                    self.problem(p, problem, HEAD_ALLOWED)

    def output(self, p: Pass, what: str, path: Path | None) -> bool:
        """Whether the pass may write ``path`` (reported once per file when not)."""
        if path is None or path in self.outputs:
            return True
        self.outputs.add(path)
        problem = output_problem(path)
        if problem is None and (lock_problem := output_problem(lock_path(path))) is not None:
            problem = f"cannot be locked: its lock file {lock_path(path)} {lock_problem}"
        if problem is not None:
            self.problem(p, f"{what} {path} {problem}", WRITABLE)
        return problem is None

    def result_table(self, path: Path) -> None:
        try:
            table_text(path)
        except UserError as error:
            self.problems.append(error)

    def store(self, p: Pass, layout: Layout | None) -> str:
        store = p.settings.persistence_file
        if store is None:
            return "no PersistenceFile"
        if store not in self.stores and persistence_exists(store):
            try:
                stored = load_persistence(store, expected_layout=layout)
            except UserError as error:
                self.problems.append(error)
                self.stores[store] = None  # reported once, not at every pass
            else:
                self.stores[store] = stored.layout
                if stored.epoch_lines_done > 0:
                    self.unfinished[store] = stored
        if p.mode == "train" and (stored := self.unfinished.pop(store, None)) is not None:
            # This pass goes on with the epoch; the passes after it start from what it writes.
            problem = unfinished_epoch_problem(stored, p)
            if problem is not None:
                if stored.batch_pass > 0:
                    problem += f" (saved in pass {stored.batch_pass}: run --resume goes on with it there)"
                self.problem(p, f"PersistenceFile {store} {problem}", SAME_SETTINGS)
        known = self.stores.get(store)
        if known is not None and layout is not None and known != layout:
            self.problem(
                p,
                f"PersistenceFile {store} holds {known.describe()} from an earlier pass, "
                f"but NetworkFile describes {layout.describe()}",
                "one PersistenceFile per network",
            )
        if store not in self.stores:
            self.stores[store] = layout  # the first training pass creates it
            return f"PersistenceFile {_short(store)} (new)"
        return f"PersistenceFile {_short(store)}"

    # --- memory, then the data sets ---------------------------------------------

    def fits(self, plans: list[_Plan], data_bytes: dict[DataKey, int], have: memory.Have) -> bool:
        """Whether the run fits in memory; else the problem, named at the first pass that does not fit."""
        usable = [plan for plan in plans if plan.layout is not None]
        shapes = _shapes(usable, data_bytes)
        for count in range(1, len(shapes) + 1):
            problem = memory.problem(memory.estimate(shapes[:count]), have)
            if problem is not None:
                self.problem(usable[count - 1].batch_pass, problem, FITTING)
                return False
        return True

    def dataset(self, plan: _Plan) -> None:
        key = plan.data
        if self.read_sizes.get(key) is None or key in self.data:
            return
        path, labels, start, end = key
        self.data[key] = None
        try:
            dataset = load_dataset(path, labels_path=labels, target_start=start, target_end=end)
        except UserError as error:
            self.problems.append(error)
            return
        if self.keep_data:
            self.datasets[key] = dataset
        targets = Dataset(np.empty((len(dataset), 0), np.uint8), dataset.targets, dataset.source)
        self.data[key] = _DataShape(len(dataset), dataset.inputs.shape[1], dataset.inputs.nbytes, targets)

    def shape(self, plan: _Plan) -> _DataShape | None:
        """The pass' data set once read, checked against its network; None if either is unusable."""
        shape = self.data.get(plan.data)
        if shape is None or plan.layout is None:
            return None
        p, layout = plan.batch_pass, plan.layout
        if shape.inputs != layout.n_inputs:
            self.problem(
                p,
                f"{plan.data_name} has {shape.inputs} inputs per line, the network's input layer "
                f"{layout.n_inputs} neurons",
                "data whose input width equals the first layer of NetworkFile",
            )
            return None
        try:
            interpret_targets(shape.targets, layout.n_outputs)
        except UserError as error:
            self.problems.append(error)
            return None
        return shape

    def summary(self, plan: _Plan) -> str:
        p, s = plan.batch_pass, plan.batch_pass.settings
        network = plan.layout.describe() if plan.layout is not None else "?"
        shape = self.data.get(plan.data)
        lines = "?" if shape is None else f"{shape.lines} lines"
        weights = f", weights [{s.min_weight}, {s.max_weight}]" if p.mode == "train" else ""
        result = f"; ResultFile {_short(s.result_file)}" if s.result_file else "; no ResultFile"
        return (
            f"{p.where}:{p.line}: {p.mode.capitalize()} ×{p.count}: {network}; "
            f"{plan.data_name} {_short(plan.data[0])} ({lines}); Parallel {s.parallel}, "
            f"WorkerBatch {s.worker_batch}, LearningRate {s.learning_rate}, Lambda {s.lambda_}"
            f"{weights}, PreProcessing {s.preprocessing.spelling}, "
            f"Executor {s.executor}; {plan.store}{result}"
        )


def _shapes(plans: list[_Plan], data_bytes: dict[DataKey, int]) -> list[PassShape]:
    """What each pass allocates (the passes whose network could not be read are left out)."""
    shapes = []
    for plan in plans:
        p, layout = plan.batch_pass, plan.layout
        if layout is not None:
            key = (*plan.data, layout.n_outputs)
            shapes.append(PassShape(p.settings, p.mode == "train", layout, key, data_bytes.get(plan.data, 0)))
    return shapes


def _shared_bytes(shape: _DataShape, layout: Layout) -> int:
    """The data set in the runner's shared memory: inputs, class indices or direct targets, the order."""
    n_outputs = layout.n_outputs
    index = shape.targets.targets.shape[1] == 1 and n_outputs > 1
    targets = shape.lines * (1 if index else n_outputs) * 8
    return shape.input_bytes + targets + shape.lines * 8


def _short(path: Path | None) -> str:
    return "—" if path is None else short_path(path)
