"""Checkpoints: where an interrupted pass is saved, and where a resumed run finds it.

A checkpoint is a persistence file that records the pass and repetition it stopped
in (``batch_pass`` > 0), the settings it ran with (``pass_settings``) and no result
row: a checkpointed pass is not finished.  It goes to the pass' PersistenceFile, or
without one to a file beside the batch file.

An unfinished epoch goes on only with the settings it began with: a resumed pass
(``find_checkpoint``) and a pass that finds an unfinished epoch in its PersistenceFile
(the pre-flight) are refused if the batch file or the command line changed one of
them since — half an epoch with WorkerBatch 10 and half with 20 is neither, and its
result row would say 20.
"""

from __future__ import annotations

import json
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
                if stored.batch_pass > len(passes):
                    raise UserError(
                        f"the checkpoint {path} was saved in pass {stored.batch_pass}, "
                        f"but the batch has {len(passes)} passes now",
                        where=batch_path, allowed="the batch file as it was when the run was interrupted",
                    )  # fmt: skip
                resumed = passes[stored.batch_pass - 1]
                problem = unfinished_epoch_problem(stored, resumed)
                if problem is not None:
                    raise UserError(
                        f"the checkpoint {path} {problem}", where=resumed.where, line=resumed.line,
                        allowed=SAME_SETTINGS,
                    )  # fmt: skip
                on_event(
                    "resume", checkpoint=str(path), batch_pass=stored.batch_pass,
                    repetition=stored.batch_repetition, epoch_lines_done=stored.epoch_lines_done,
                )  # fmt: skip
                return stored.batch_pass, stored.batch_repetition
    raise UserError(
        "nothing to resume: no persistence file of this batch records an interrupted pass",
        where=batch_path, allowed="--resume after a run of this batch was interrupted",
    )  # fmt: skip


def save_checkpoint(
    path: Path, network: Persisted, batch_pass: Pass, index: int, repetition: int
) -> Persisted:
    """Save ``network`` as the checkpoint of ``batch_pass`` (pass ``index``, repetition ``repetition``),
    with its settings; return what was saved.

    No result row goes with it: a checkpoint records none (see ``actors.records.write_order``).
    """
    network = replace(
        network, batch_pass=index, batch_repetition=repetition, result_file="", result_row="",
        pass_settings=json.dumps(_compared(batch_pass)),
    )  # fmt: skip
    save_persistence(path, network)
    return network


# Where the weights and the row go: not what the pass computes or measures (and a checkpoint in the
# PersistenceFile is only found there).
_OUTPUTS = ("ResultFile", "PersistenceFile")
SAME_SETTINGS = (
    "the settings the interrupted pass ran with, in the batch file and on the command line (to start "
    "afresh instead: no --resume, and a PersistenceFile that holds no unfinished epoch, or none)"
)


def _compared(batch_pass: Pass) -> dict[str, str]:
    """The settings a checkpoint records and a resume compares; paths relative to the batch file's
    folder, so that a folder moved whole (batch, data and all) still resumes."""
    written = batch_pass.settings.written(Path(batch_pass.where).parent)
    return {key: value for key, value in written.items() if key not in _OUTPUTS}


def unfinished_epoch_problem(stored: Persisted, batch_pass: Pass) -> str | None:
    """Why ``batch_pass`` may not go on with the unfinished epoch of ``stored`` (a checkpoint), or None.

    Only a training pass goes on with one (a test pass starts over); a checkpoint that
    records no settings (an older program's) is not compared, nor a directive it does
    not know.  The reason reads after the checkpoint's name, e.g. "was saved with other
    settings: WorkerBatch was 10, is 20 now".
    """
    if batch_pass.mode != "train" or not stored.pass_settings:
        return None
    try:
        recorded = json.loads(stored.pass_settings)
    except ValueError:
        recorded = None
    if not isinstance(recorded, dict):
        return "records its settings in a form this program does not know (pass_settings: not a JSON object)"
    now = _compared(batch_pass)
    changes = [
        f"{key} was {recorded[key]}, is {value} now"
        for key, value in now.items()
        if key in recorded and str(recorded[key]) != value
    ]
    if not changes:
        return None
    shown = "; ".join(changes[:4]) + (f"; and {len(changes) - 4} more" if len(changes) > 4 else "")
    return f"holds an epoch interrupted after {stored.epoch_lines_done:,} lines with other settings: {shown}"
