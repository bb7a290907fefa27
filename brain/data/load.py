"""One entry point for every data file: IDX image files and data CSVs, told apart by their bytes."""

from __future__ import annotations

from pathlib import Path

from brain.data.csvcache import read_csv_cached
from brain.data.dataset import Dataset
from brain.data.idx import is_idx, load_idx
from brain.errors import DataError


def load_dataset(
    path: str | Path,
    *,
    labels_path: str | Path | None = None,
    target_start: int = 0,
    target_end: int = 1,
    cache: bool = True,
) -> Dataset:
    """Load a data file: an IDX images file (``…-images-idx3-ubyte``, gzip or raw) or a
    data CSV.

    IDX: the labels file is ``labels_path`` or, by default, the one the MNIST naming
    convention pairs with ``path``; ``target_start``/``target_end`` are not used.
    CSV: columns ``[target_start, target_end)`` are targets, every later column an
    input; with ``cache`` a binary copy beside the CSV (``name.csv.cache.npz``) speeds
    up the next load.  Raises ``DataError`` naming the file (and the line or record)
    for anything malformed -- see ``load_idx`` and ``read_csv`` -- and for a
    ``labels_path`` given with a CSV.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except FileNotFoundError:
        raise DataError("file not found", where=path) from None
    except OSError as error:
        raise DataError(f"cannot read: {error.strerror or error}", where=path) from None
    if is_idx(head):
        return load_idx(path, labels_path)
    if labels_path is not None:
        raise DataError(
            "a labels file goes only with IDX images; a CSV holds its own targets",
            where=path,
            allowed="TargetColumnStart/TargetColumnEnd to choose the target columns",
        )
    return read_csv_cached(path, target_start, target_end, cache=cache)
