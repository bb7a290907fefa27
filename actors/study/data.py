"""The data a study trains and tests on: MNIST whole, or its first lines as CSV subsets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from brain.data import Dataset, load_idx, write_csv
from brain.errors import DataError

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"


@dataclass(frozen=True)
class StudyData:
    """Where a study's TrainFile and TestFile are, and how many lines each holds."""

    train: Path
    test: Path
    train_lines: int
    test_lines: int


def prepare_data(mnist: Path, folder: Path, train_lines: int | None, test_lines: int | None) -> StudyData:
    """The MNIST IDX files in ``mnist``, or CSV files of their first lines written into ``folder``.

    A subset is written with ``brain.data.write_csv`` (label first, then the 784
    pixels), so the runtime reads it as any other TrainFile: nothing is added to it
    for the study.  Raises ``DataError`` when the IDX files are missing (with the
    command that fetches them).
    """
    train_path, test_path = mnist / TRAIN_IMAGES, mnist / TEST_IMAGES
    for path in (train_path, test_path):
        if not path.exists():
            raise DataError(
                "MNIST file not found",
                where=path,
                allowed="the IDX files fetched by `python -m actors data fetch`, or --data FOLDER",
            )
    train_file, train_count = _subset(load_idx(train_path), train_path, train_lines, folder / "train")
    test_file, test_count = _subset(load_idx(test_path), test_path, test_lines, folder / "test")
    return StudyData(train_file, test_file, train_count, test_count)


def _subset(dataset: Dataset, path: Path, lines: int | None, stem: Path) -> tuple[Path, int]:
    if lines is None or lines >= len(dataset):
        return path, len(dataset)
    target = stem.with_name(f"{stem.name}-first-{lines}.csv")
    target.parent.mkdir(parents=True, exist_ok=True)
    subset = Dataset(dataset.inputs[:lines], dataset.targets[:lines], f"{path} (first {lines})")
    write_csv(subset, target)
    return target, lines
