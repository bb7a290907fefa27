"""IDX to data CSV, the form the thesis program read."""

from __future__ import annotations

from pathlib import Path

from brain.data.csvfile import write_csv
from brain.data.idx import load_idx


def convert_idx_to_csv(
    images_path: str | Path, csv_path: str | Path, labels_path: str | Path | None = None
) -> int:
    """Write the IDX images (and their labels, by default the MNIST-named partner) as a
    ``label,pixel0,...`` CSV, atomically; return the number of records.  Raises
    ``DataError`` for a malformed IDX pair or an unwritable ``csv_path``."""
    dataset = load_idx(images_path, labels_path)
    write_csv(dataset, csv_path)
    return len(dataset)
