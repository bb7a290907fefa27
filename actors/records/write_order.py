"""A training pass' two records, the persistence file and its result row, agree through any kill.

The write sequence of a training pass that has both files:

1. the new persistence goes to a temp file beside the old one (``.NAME.<random>.tmp``),
   fsynced; it carries the row it belongs with (``result_row``) and the table
   (``result_file``);
2. the row is appended to the table (itself replaced atomically, fsynced);
3. the temp file is renamed over the persistence file.

So at every instant each persisted epoch has its row.  What a kill can leave is a
temp file: killed before step 2 completed, its row is not in the table; killed after
it, the row is there.  The next run that takes the lock on the file (``recover``)
removes the first kind -- rolled back, that epoch is trained again -- and renames the
second into place -- rolled forward, its row is written already.  Every other temp
file of ours beside a locked output (a half-written one, a result table's) is stale
and removed.  The lock is what makes this safe: whoever wrote those temp files held
it, so it is dead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from actors.records.results import ResultRow, append_result
from brain.atomic import Staged, reported, temp_files
from brain.errors import PersistenceError
from brain.persistence import Persisted, load_persistence, save_persistence, stage_persistence


def write_records(
    persistence_file: Path | None, network: Persisted, result_file: Path | None, row: ResultRow
) -> Persisted:
    """Persist ``network`` and append ``row``, each when its file is given, in the order above.

    Returns the network as persisted: carrying its row and table when both files are
    written, empty ones otherwise.  An error (a full disk, a table with other
    columns) is a ``UserError`` raised with both files as they were and no temp file
    left -- except when the final rename fails after the row was written: then the
    temp file stays, for the next run to put in place.
    """
    if persistence_file is None:
        if result_file is not None:
            append_result(result_file, row)
        return network
    if result_file is None:
        network = replace(network, result_file="", result_row="")
        save_persistence(persistence_file, network)
        return network
    network = replace(network, result_file=str(result_file), result_row=row.line())
    staged = stage_persistence(persistence_file, network)
    try:
        append_result(result_file, row)
    except BaseException:
        staged.discard()
        raise
    with reported(persistence_file):
        staged.commit()
    return network


def recover(paths: Iterable[Path]) -> list[str]:
    """Finish or undo what a killed run left beside ``paths``, outputs whose locks the caller holds.

    A temp file holding a persistence whose row is in its table is renamed over its
    file; every other temp file of ours is removed.  Returns one sentence per temp
    file put in place, for the console.  An error renaming is a ``UserError``.
    """
    finished = []
    for path in dict.fromkeys(Path(p) for p in paths):
        for temp in temp_files(path):
            if _row_written(temp):
                with reported(path):
                    Staged(path, temp).commit()
                finished.append(
                    f"{path}: put in place the save a killed run left after writing its result row"
                )
            else:
                with contextlib.suppress(FileNotFoundError), reported(temp):
                    temp.unlink()
    return finished


def _row_written(temp: Path) -> bool:
    """Whether ``temp`` is a complete persistence whose result row is in its table."""
    try:
        pending = load_persistence(temp)
    except PersistenceError:  # half-written, or not a persistence at all (a table's temp file)
        return False
    table = Path(pending.result_file)
    if not pending.result_row or not table.is_file():
        return False
    try:
        lines = table.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return False
    return pending.result_row in lines
