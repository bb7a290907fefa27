"""Check a batch file without running it: every file it names is there and fits the network.

``check_batch`` parses the batch, reads every network file, looks at every data
and persistence file, and says in one line per pass what would run.  Every
problem found is collected and raised together as one ``BatchError``.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from actors.batchfile import BatchError, Pass, load_batch
from brain.errors import UserError
from brain.layout import Layout, load_layout
from brain.persistence import load_persistence, persistence_exists
from brain.preprocessing import PreProcessing


@dataclass(frozen=True)
class _DataShape:
    """What a pass needs to know of a data file; the inputs themselves are not kept."""

    lines: int | None
    inputs: int | None
    targets: Any | None  # a brain.data.Dataset holding the targets and no inputs


def check_batch(path: str | Path, root: str | Path | None = None) -> list[str]:
    """One human-readable line per pass of the batch at ``path``.

    Raises ``BatchError`` holding every problem: the batch's own, unreadable
    network files, missing or unfitting data files, persistence files written for
    another network.  Data files are opened with ``brain.data.load_dataset`` and
    their targets read with ``brain.data.interpret_targets`` when that package is
    present; otherwise only their existence is checked.
    """
    return _Checker().run(Path(path), root)


class _Checker:
    def __init__(self) -> None:
        self.problems: list[UserError] = []
        self.layouts: dict[Path, Layout | None] = {}
        self.data: dict[tuple[Any, ...], _DataShape | None] = {}
        # The layout each persistence file holds or will hold (None: unreadable).
        self.stores: dict[Path, Layout | None] = {}
        self.data_layer = _data_layer()

    def run(self, path: Path, root: str | Path | None = None) -> list[str]:
        summaries = [self.check_pass(p) for p in load_batch(path, root=root).passes]
        if self.problems:
            # A data file that does not fit is met again by every pass that reads it.
            unique = {str(problem): problem for problem in self.problems}
            raise BatchError(list(unique.values()))
        return summaries

    def problem(self, p: Pass, message: str, allowed: str | None = None) -> None:
        self.problems.append(UserError(message, where=p.where, line=p.line, allowed=allowed))

    def check_pass(self, p: Pass) -> str:
        s = p.settings
        layout = self.layout(s.network_file)
        data_key = "TrainFile" if p.mode == "train" else "TestFile"
        data_path, labels = (
            (s.train_file, s.train_labels) if p.mode == "train" else (s.test_file, s.test_labels)
        )
        shape = self.dataset(p, data_key, data_path, labels)
        if layout is not None and shape is not None:
            self.check_fit(p, data_key, layout, shape)
        store = self.store(p, layout)
        network = layout.describe() if layout is not None else "?"
        lines = "?" if shape is None or shape.lines is None else f"{shape.lines} lines"
        weights = f", weights [{s.min_weight}, {s.max_weight}]" if p.mode == "train" else ""
        result = f"; ResultFile {_short(s.result_file)}" if s.result_file else "; no ResultFile"
        return (
            f"{p.where}:{p.line}: {p.mode.capitalize()} ×{p.count}: {network}; "
            f"{data_key} {_short(data_path)} ({lines}); Parallel {s.parallel}, "
            f"WorkerBatch {s.worker_batch}, LearningRate {s.learning_rate}, Lambda {s.lambda_}"
            f"{weights}, PreProcessing {PreProcessing.spellings()[s.preprocessing]}, "
            f"Executor {s.executor}; {store}{result}"
        )

    def layout(self, path: Path | None) -> Layout | None:
        if path is None:
            return None
        if path not in self.layouts:
            try:
                self.layouts[path] = load_layout(path)
            except UserError as error:
                self.problems.append(error)
                self.layouts[path] = None
        return self.layouts[path]

    def dataset(self, p: Pass, key: str, path: Path | None, labels: Path | None) -> _DataShape | None:
        if path is None:
            return None
        s = p.settings
        cache_key = (path, labels, s.target_start, s.target_end)
        if cache_key in self.data:
            return self.data[cache_key]
        shape = None
        if not path.is_file():
            self.problem(p, f"{key} {path} not found", "an existing data file")
        elif labels is not None and not labels.is_file():
            self.problem(p, f"labels file {labels} not found", "an existing IDX labels file")
        elif self.data_layer is None:
            shape = _DataShape(None, None, None)
        else:
            try:
                dataset = self.data_layer.load_dataset(
                    path, labels_path=labels, target_start=s.target_start, target_end=s.target_end
                )
            except UserError as error:
                self.problems.append(error)
            else:
                # Only the targets are kept: every data set of a batch would cost gigabytes.
                n = len(dataset.inputs)
                targets = self.data_layer.Dataset(np.empty((n, 0), np.uint8), dataset.targets, dataset.source)
                shape = _DataShape(n, dataset.inputs.shape[1], targets)
        self.data[cache_key] = shape
        return shape

    def check_fit(self, p: Pass, key: str, layout: Layout, shape: _DataShape) -> None:
        if shape.inputs is not None and shape.inputs != layout.n_inputs:
            self.problem(
                p,
                f"{key} has {shape.inputs} inputs per line, the network's input layer "
                f"{layout.n_inputs} neurons",
                "data whose input width equals the first layer of NetworkFile",
            )
        if shape.targets is not None:
            try:
                self.data_layer.interpret_targets(shape.targets, layout.n_outputs)
            except UserError as error:
                self.problems.append(error)

    def store(self, p: Pass, layout: Layout | None) -> str:
        store = p.settings.persistence_file
        if store is None:
            return "no PersistenceFile"
        if store not in self.stores and persistence_exists(store):
            try:
                self.stores[store] = load_persistence(store, expected_layout=layout).layout
            except UserError as error:
                self.problems.append(error)
                self.stores[store] = None  # reported once, not at every pass
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


def _data_layer() -> Any | None:
    """The ``brain.data`` package once it exists, else None (existence checks only)."""
    try:
        module = importlib.import_module("brain.data")
    except ModuleNotFoundError as exc:
        if exc.name in ("brain.data", "brain"):
            return None
        raise
    needed = ("load_dataset", "interpret_targets", "Dataset")
    return module if all(hasattr(module, name) for name in needed) else None


def _short(path: Path | None) -> str:
    if path is None:
        return "—"
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
