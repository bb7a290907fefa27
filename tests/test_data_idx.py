"""IDX loading: the published MNIST facts, and every way a file can be malformed."""

from __future__ import annotations

import gzip
import hashlib
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from brain.data import default_labels_path, load_dataset, load_idx, read_idx
from brain.errors import DataError

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"

# Published facts (shared/data/mnist/README.md), not derived from our loader.
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
TRAIN_FIRST_TEN = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
TEST_FIRST_TEN = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def canonical_sha256() -> dict[str, str]:
    lines = (SHARED_MNIST / "SHA256SUMS.uncompressed").read_text().split("\n")
    return {name: digest for digest, name in (line.split() for line in lines if line.strip())}


def idx_bytes(sizes: list[int], body: bytes, *, type_byte: int = 0x08) -> bytes:
    return bytes([0, 0, type_byte, len(sizes)]) + struct.pack(f">{len(sizes)}I", *sizes) + body


def write_pair(folder: Path, images: bytes, labels: bytes, *, gz: bool = False) -> Path:
    suffix = ".gz" if gz else ""
    pack = gzip.compress if gz else bytes
    images_path = folder / f"tiny-images-idx3-ubyte{suffix}"
    images_path.write_bytes(pack(images))
    (folder / f"tiny-labels-idx1-ubyte{suffix}").write_bytes(pack(labels))
    return images_path


def three_two_by_two() -> tuple[bytes, bytes]:
    return idx_bytes([3, 2, 2], bytes(range(12))), idx_bytes([3], bytes([2, 0, 1]))


@pytest.mark.parametrize(
    ("prefix", "counts", "first_ten"),
    [("train", TRAIN_COUNTS, TRAIN_FIRST_TEN), ("t10k", TEST_COUNTS, TEST_FIRST_TEN)],
)
def test_mnist_labels_have_the_published_counts_and_order(mnist_dir, prefix, counts, first_ten):
    dataset = load_dataset(mnist_dir / f"{prefix}-images-idx3-ubyte.gz")
    assert dataset.targets.shape == (sum(counts), 1)
    assert dataset.targets.dtype == np.uint8
    assert np.bincount(dataset.targets[:, 0], minlength=10).tolist() == counts
    assert dataset.targets[:10, 0].tolist() == first_ten


def test_mnist_images_are_flat_contiguous_uint8_rows(mnist_dir):
    dataset = load_dataset(mnist_dir / "t10k-images-idx3-ubyte.gz")
    assert dataset.inputs.shape == (10000, 784)
    assert dataset.inputs.dtype == np.uint8
    assert dataset.inputs.flags.c_contiguous
    assert len(dataset) == 10000
    assert dataset.source.endswith("t10k-images-idx3-ubyte.gz")


@pytest.mark.parametrize("prefix", ["train", "t10k"])
def test_loaded_arrays_rebuild_the_canonical_file_bytes(mnist_dir, prefix):
    sums = canonical_sha256()
    dataset = load_dataset(mnist_dir / f"{prefix}-images-idx3-ubyte.gz")
    n = len(dataset)
    images = struct.pack(">IIII", 2051, n, 28, 28) + dataset.inputs.tobytes()
    labels = struct.pack(">II", 2049, n) + dataset.targets.tobytes()
    assert hashlib.sha256(images).hexdigest() == sums[f"{prefix}-images-idx3-ubyte"]
    assert hashlib.sha256(labels).hexdigest() == sums[f"{prefix}-labels-idx1-ubyte"]


def test_raw_and_gzip_files_load_the_same(mnist_dir, tmp_path):
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / name).write_bytes(gzip.decompress((mnist_dir / f"{name}.gz").read_bytes()))
    raw = load_dataset(tmp_path / "t10k-images-idx3-ubyte")
    packed = load_dataset(mnist_dir / "t10k-images-idx3-ubyte.gz")
    assert np.array_equal(raw.inputs, packed.inputs)
    assert np.array_equal(raw.targets, packed.targets)


def test_tiny_pair_loads_as_written(tmp_path):
    images, labels = three_two_by_two()
    for gz in (False, True):
        dataset = load_dataset(write_pair(tmp_path, images, labels, gz=gz))
        assert dataset.inputs.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
        assert dataset.targets.tolist() == [[2], [0], [1]]


def test_labels_path_overrides_the_naming_convention(tmp_path):
    images, labels = three_two_by_two()
    (tmp_path / "pictures.idx").write_bytes(images)
    (tmp_path / "answers.idx").write_bytes(labels)
    dataset = load_dataset(tmp_path / "pictures.idx", labels_path=tmp_path / "answers.idx")
    assert dataset.targets[:, 0].tolist() == [2, 0, 1]


def test_default_labels_path_keeps_compression_and_falls_back(tmp_path):
    images = tmp_path / "train-images-idx3-ubyte.gz"
    assert default_labels_path(images) == tmp_path / "train-labels-idx1-ubyte.gz"
    assert default_labels_path(tmp_path / "x-images-idx3-ubyte") == tmp_path / "x-labels-idx1-ubyte"
    (tmp_path / "train-labels-idx1-ubyte").touch()
    assert default_labels_path(images) == tmp_path / "train-labels-idx1-ubyte"
    assert default_labels_path(tmp_path / "t-images.idx3-ubyte") == tmp_path / "t-labels.idx1-ubyte"


def test_default_labels_path_rejects_unconventional_names(tmp_path):
    with pytest.raises(DataError, match="labels file"):
        default_labels_path(tmp_path / "digits.idx")


def test_labels_file_given_as_images_names_the_magic_numbers(tmp_path):
    _, labels = three_two_by_two()
    (tmp_path / "a-images-idx3-ubyte").write_bytes(labels)
    with pytest.raises(DataError) as caught:
        load_dataset(tmp_path / "a-images-idx3-ubyte")
    assert "2049" in str(caught.value) and "a labels file" in str(caught.value)
    assert "2051" in caught.value.allowed


def test_non_idx_bytes_are_rejected(tmp_path):
    (tmp_path / "x").write_bytes(b"\x01\x02\x08\x03" + bytes(40))
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(tmp_path / "x", 2051)


def test_value_types_other_than_unsigned_byte_are_rejected(tmp_path):
    (tmp_path / "x").write_bytes(idx_bytes([1, 1, 1], bytes(4), type_byte=0x0D))
    with pytest.raises(DataError) as caught:
        read_idx(tmp_path / "x", 2051)
    assert "0x0D (float (float32))" in str(caught.value)
    assert "0x08" in caught.value.allowed


def test_truncated_images_name_the_record_where_the_file_ends(tmp_path):
    images = idx_bytes([3, 2, 2], bytes(9))  # record 3 has one of its four bytes
    path = write_pair(tmp_path, images, three_two_by_two()[1])
    with pytest.raises(DataError) as caught:
        load_dataset(path)
    assert caught.value.line == 3
    assert str(caught.value).startswith(f"{path}:3: truncated: ends inside record 3 of 3")


def test_truncated_labels_name_the_labels_file(tmp_path):
    path = write_pair(tmp_path, three_two_by_two()[0], idx_bytes([3], bytes(1)))
    with pytest.raises(DataError) as caught:
        load_dataset(path)
    assert caught.value.where == str(tmp_path / "tiny-labels-idx1-ubyte")
    assert caught.value.line == 2


def test_truncated_gzip_stream_is_a_data_error(tmp_path):
    images, labels = three_two_by_two()
    path = write_pair(tmp_path, images, labels, gz=True)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match="broken gzip data"):
        load_dataset(path)


def test_bytes_after_the_last_record_are_rejected(tmp_path):
    images, labels = three_two_by_two()
    path = write_pair(tmp_path, images + b"\x00", labels)
    with pytest.raises(DataError, match="1 bytes after the last of 3 records"):
        load_dataset(path)


def test_image_and_label_counts_must_agree(tmp_path):
    path = write_pair(tmp_path, three_two_by_two()[0], idx_bytes([2], bytes(2)))
    with pytest.raises(DataError, match="3 images but 2 labels"):
        load_dataset(path)


def test_zero_sizes_are_rejected(tmp_path):
    path = write_pair(tmp_path, idx_bytes([0, 28, 28], b""), idx_bytes([0], b""))
    with pytest.raises(DataError, match="size of 0"):
        load_dataset(path)


def test_a_lying_huge_count_fails_fast_without_a_big_allocation(tmp_path):
    path = write_pair(tmp_path, idx_bytes([2**32 - 1, 28, 28], bytes(10)), idx_bytes([1], b"\x00"))
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as caught:
            load_dataset(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.line == 1
    assert "of 4294967295" in str(caught.value)
    assert peak < 2**20


def test_header_shorter_than_its_dimension_count(tmp_path):
    (tmp_path / "x").write_bytes(bytes([0, 0, 8, 3]) + bytes(5))
    with pytest.raises(DataError, match="header needs 16 bytes"):
        read_idx(tmp_path / "x", 2051)


def test_missing_labels_file_is_named(tmp_path):
    images, _ = three_two_by_two()
    (tmp_path / "a-images-idx3-ubyte").write_bytes(images)
    with pytest.raises(DataError) as caught:
        load_idx(tmp_path / "a-images-idx3-ubyte")
    assert str(caught.value) == f"{tmp_path / 'a-labels-idx1-ubyte'}: file not found"


def test_missing_data_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_dataset(tmp_path / "nothing-images-idx3-ubyte.gz")
