"""The network each pass starts from, as the Go program chose it, and what a pass makes of it.

Before every pass the PersistenceFile in force is read: a non-empty one is loaded;
a missing one gives a training pass fresh weights drawn from Seed (a new
experiment) and is an error for a test pass.  Only without any PersistenceFile does
a pass continue the network trained before it in this run.  Every choice other
than the network in memory starts a new *lineage*, so that optimizer state is never
carried from one experiment into the next.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from actors.batchfile.parse import Pass
from actors.console import short_path
from actors.outcome import PassOutcome
from actors.records.checkpoints import checkpoint_path
from brain.errors import DivergenceError, UserError
from brain.layout import Layout
from brain.modern import initial_weights
from brain.persistence import Persisted, load_persistence, persistence_exists

TEST_ERRORS = "test_errors"  # Persisted.extra: the error rate of every test pass, for Plateau


def error_history(network: Persisted) -> list[float]:
    """The error rate of every test pass of ``network`` so far (what the Plateau schedule reads)."""
    return [float(x) for x in network.extra.get(TEST_ERRORS, ())]


class Networks:
    """The network in memory, where it was read from or written to, and its lineage."""

    def __init__(self, batch_path: Path) -> None:
        self.batch_path = batch_path
        self.network: Persisted | None = None
        self.path: Path | None = None  # None: fresh, or in memory only
        self.origin = ""  # e.g. "fresh weights, seed 42", for the console and the log
        self.lineage = 0

    def for_pass(self, batch_pass: Pass, layout: Layout, resuming: bool) -> Persisted:
        """The network ``batch_pass`` starts from (its checkpoint when ``resuming``).

        Raises ``UserError`` naming the batch line for a test pass without a network,
        and whatever reading the persistence file raises.
        """
        settings = batch_pass.settings
        path = checkpoint_path(batch_pass, self.batch_path) if resuming else settings.persistence_file
        if path is not None and path == self.path and self.network is not None:
            # What this run wrote there itself, plus what test passes added since (test errors).
            network, origin = self.network, f"from {short_path(path)}, epoch {self.network.epoch}"
        elif path is not None and persistence_exists(path):
            network = load_persistence(path, expected_layout=layout)
            origin = f"from {short_path(path)}, epoch {network.epoch}"
            self.lineage += 1
        elif path is None and self.network is not None and self.network.layout == layout:
            network = self.network
            origin = f"the network trained above (in memory), epoch {network.epoch}"
        elif batch_pass.mode == "train":
            fresh = initial_weights(
                layout, settings.init, settings.seed, settings.min_weight, settings.max_weight
            )
            network = Persisted(
                layout, fresh, semantics=settings.semantics.recorded, elu_alpha=settings.elu_alpha,
                preprocessing=settings.preprocessing, shuffle_seed=settings.seed,
            )  # fmt: skip
            origin = f"fresh weights, seed {settings.seed}"
            self.lineage += 1
        elif path is not None:
            raise UserError(
                f"no persistence for testing found: PersistenceFile {path} does not exist",
                where=batch_pass.where, line=batch_pass.line,
                allowed="a PersistenceFile that exists, or a Train line with it before the Test line",
            )  # fmt: skip
        else:
            raise UserError(
                "a test pass needs a trained network, but there is no persistence file and "
                "nothing was trained before it",
                where=batch_pass.where, line=batch_pass.line,
                allowed="a PersistenceFile that exists, or a Train line before the Test line",
            )  # fmt: skip
        self.network, self.path, self.origin = network, path, origin
        return network

    def keep(self, network: Persisted, path: Path | None) -> None:
        """``network`` is now the one in memory, written to ``path`` (None: not written)."""
        self.network = network
        if path is not None:
            self.path = path


def trained(
    network: Persisted, outcome: PassOutcome, batch_pass: Pass, epoch: int, extra: dict[str, np.ndarray]
) -> Persisted:
    """``network`` after a training pass: its weights, totals, and where its epoch got to.

    A finished pass completes ``epoch``; a stopped one (``outcome.stopped``) records the
    lines of the epoch done, for a checkpoint.  ``extra`` (optimizer state) is saved
    beside the weights with the test errors so far.  Raises ``DivergenceError`` if
    the weights of a finished pass are not finite.
    """
    settings = batch_pass.settings
    weights = outcome.weights
    if not outcome.stopped and not np.isfinite(weights).all():
        where = f"{batch_pass.where}:{batch_pass.line}"
        raise DivergenceError(f"the weights are not finite after epoch {epoch}", where=where)
    done = {"epoch_lines_done": outcome.cursor} if outcome.stopped else {
        "epoch": epoch, "epoch_lines_done": 0, "elu_alpha": settings.elu_alpha,
        "semantics": settings.semantics.recorded, "preprocessing": settings.preprocessing,
        "batch_pass": 0, "batch_repetition": 0, "pass_settings": "",
    }  # fmt: skip
    return replace(
        network, weights=weights, total_lines=network.total_lines + outcome.lines,
        total_seconds=network.total_seconds + outcome.seconds, shuffle_seed=settings.seed,
        extra={TEST_ERRORS: np.array(error_history(network)), **extra}, **done,
    )  # fmt: skip
