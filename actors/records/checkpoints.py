"""Checkpoints: where an interrupted pass is saved, and where a resumed run finds it.

A checkpoint is a persistence file that records the pass and repetition it stopped
in (``batch_pass`` > 0) and no result row: a checkpointed pass is not finished.
It goes to the pass' PersistenceFile, or without one to a file beside the batch file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from actors.batchfile.parse import Pass
from brain.errors import UserError
from brain.persistence import Persisted, load_persistence, persistence_exists, save_persistence


def checkpoint_path(batch_pass: Pass, batch_path: Path) -> Path:
    """Where an interrupted pass is saved: its PersistenceFile, or a file beside the batch file."""
    if batch_pass.settings.persistence_file is not None:
        return batch_pass.settings.persistence_file
    return batch_path.with_name(batch_path.name + ".checkpoint.npz")


def find_checkpoint(
    passes: Sequence[Pass], batch_path: Path, on_event: Callable[..., Any]
) -> tuple[int, int]:
    """The (pass, repetition) an interrupted run of the batch stopped in, from its checkpoint.

    Raises ``UserError`` if no persistence file of the batch records an interrupted pass.
    """
    for batch_pass in passes:
        path = checkpoint_path(batch_pass, batch_path)
        if persistence_exists(path):
            stored = load_persistence(path)
            if stored.batch_pass > 0:
                on_event(
                    "resume", checkpoint=str(path), batch_pass=stored.batch_pass,
                    repetition=stored.batch_repetition, epoch_lines_done=stored.epoch_lines_done,
                )  # fmt: skip
                return stored.batch_pass, stored.batch_repetition
    raise UserError(
        "nothing to resume: no persistence file of this batch records an interrupted pass",
        where=batch_path, allowed="--resume after a run of this batch was interrupted",
    )  # fmt: skip


def save_checkpoint(path: Path, network: Persisted, index: int, repetition: int) -> Persisted:
    """Save ``network`` as the checkpoint of pass ``index``, repetition ``repetition``; return what was saved.

    No result row goes with it: a checkpoint records none (see ``actors.records.write_order``).
    """
    network = replace(network, batch_pass=index, batch_repetition=repetition, result_file="", result_row="")
    save_persistence(path, network)
    return network
