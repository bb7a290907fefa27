"""The data CSV: round trip from IDX, value types, line-numbered errors, the binary cache."""

from __future__ import annotations

import csv
import gzip
import os

import numpy as np
import pytest
from test_data_idx_cache import mapped_from

import brain.data.csvcache
import brain.data.csvfile
from brain.data import (
    Dataset,
    cache_path,
    convert_idx_to_csv,
    load_dataset,
    read_csv,
    write_csv,
)
from brain.errors import DataError


def write(tmp_path, text: bytes, name: str = "data.csv"):
    path = tmp_path / name
    path.write_bytes(text)
    return path


def forbid_parsing(monkeypatch):
    """Make any CSV parse fail, so a load that succeeds must have come from the cache."""

    def refuse(*args, **kwargs):
        raise AssertionError("the CSV was parsed")

    monkeypatch.setattr(brain.data.csvcache, "read_csv", refuse)


def test_idx_to_csv_round_trip_keeps_every_value(mnist_dir, tmp_path):
    images = mnist_dir / "t10k-images-idx3-ubyte.gz"
    assert convert_idx_to_csv(images, tmp_path / "test.csv") == 10000
    from_idx = load_dataset(images)
    from_csv = load_dataset(tmp_path / "test.csv")
    assert from_csv.inputs.dtype == np.uint8
    assert from_csv.targets.dtype == np.float64
    assert np.array_equal(from_csv.inputs, from_idx.inputs)
    assert np.array_equal(from_csv.targets, from_idx.targets)


def test_converted_csv_lines_are_label_then_pixels(mnist_dir, tmp_path):
    convert_idx_to_csv(mnist_dir / "t10k-images-idx3-ubyte.gz", tmp_path / "test.csv")
    raw = gzip.decompress((mnist_dir / "t10k-images-idx3-ubyte.gz").read_bytes())
    pixels = np.frombuffer(raw, np.uint8, offset=16).reshape(10000, 784)
    with open(tmp_path / "test.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert len(rows) == 10000
    assert [row[0] for row in rows[:10]] == ["7", "2", "1", "0", "4", "1", "4", "9", "5", "9"]
    for number in (0, 1, 9999):
        assert [int(cell) for cell in rows[number][1:]] == pixels[number].tolist()


def test_integer_cells_give_uint8_inputs_and_float_targets(tmp_path):
    dataset = read_csv(write(tmp_path, b"5,0,255\n3,1,2\n"))
    assert dataset.inputs.dtype == np.uint8
    assert dataset.inputs.tolist() == [[0, 255], [1, 2]]
    assert dataset.targets.dtype == np.float64
    assert dataset.targets.tolist() == [[5.0], [3.0]]


@pytest.mark.parametrize(
    ("text", "dtype"),
    [
        (b"1,0.5,2\n", np.float64),
        (b"1,256,2\n", np.float64),
        (b"1,-1,2\n", np.float64),
        (b"1,1.0,2e0\n", np.uint8),
    ],
)
def test_inputs_are_uint8_exactly_when_all_are_integers_0_to_255(tmp_path, text, dtype):
    dataset = read_csv(write(tmp_path, text))
    assert dataset.inputs.dtype == dtype
    assert dataset.inputs.flags.c_contiguous


def test_target_columns_pick_targets_and_later_columns_are_inputs(tmp_path):
    dataset = read_csv(write(tmp_path, b"9,1,2,30,40\n8,3,4,50,60\n"), 1, 3)
    assert dataset.targets.tolist() == [[1, 2], [3, 4]]
    assert dataset.inputs.tolist() == [[30, 40], [50, 60]]


def test_trailing_blank_lines_and_crlf_are_accepted(tmp_path):
    dataset = read_csv(write(tmp_path, b"1,2\r\n3,4\r\n\r\n\n"))
    assert dataset.inputs.tolist() == [[2], [4]]
    assert dataset.targets.tolist() == [[1], [3]]


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (b"1,2,3\n4,5,6\n7,8\n", 3, "2 columns, but line 1 has 3"),
        (b"1,2\n3,x\n", 2, "column 2: 'x' is not a number"),
        (b"1,2\n3,\n", 2, "column 2: '' is not a number"),
        (b'1,2\n3,"4"\n', 2, "column 2: '\"4\"' is not a number"),
        (b"1;2;3\n4;5;6\n", 1, "the separator must be ',', not ';'"),
        (b"1\t2\t3\n", 1, "the separator must be ',', not a tab"),
        (b"1,2\n\n3,4\n", 2, "empty line between records"),
        (b"1,2\n3,4\n5,nan\n", 3, "column 2: 'nan' is not a finite number"),
        (b"inf,2\n", 1, "column 1: 'inf' is not a finite number"),
        (b"label,pixel0\n1,2\n", 1, "no header line"),
        (b"1,2\n3,4\n5,6,\n", 3, "3 columns, but line 1 has 2"),
    ],
)
def test_malformed_csv_names_the_line(tmp_path, text, line, fragment):
    path = write(tmp_path, text)
    with pytest.raises(DataError) as caught:
        load_dataset(path)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"{path}:{line}: ")
    assert fragment in str(caught.value)
    assert not cache_path(path).exists()


@pytest.mark.parametrize("text", [b"", b"\n \r\n\t\n"])
def test_empty_file_is_a_data_error(tmp_path, text):
    with pytest.raises(DataError, match="the file is empty"):
        load_dataset(write(tmp_path, text))


@pytest.mark.parametrize(("start", "end"), [(0, 3), (1, 3), (1, 1), (2, 1), (-1, 0), (3, 4)])
def test_target_columns_outside_the_data_are_rejected(tmp_path, start, end):
    path = write(tmp_path, b"1,2,3\n4,5,6\n")
    with pytest.raises(DataError) as caught:
        load_dataset(path, target_start=start, target_end=end)
    assert f"target columns [{start}, {end})" in str(caught.value)
    assert "TargetColumnEnd <= 2" in caught.value.allowed


def test_labels_path_with_a_csv_is_rejected(tmp_path):
    path = write(tmp_path, b"1,2\n")
    with pytest.raises(DataError, match="labels file goes only with IDX"):
        load_dataset(path, labels_path=tmp_path / "labels")


def test_write_csv_prints_integers_as_integers(tmp_path):
    dataset = Dataset(
        inputs=np.array([[0, 255], [1, 2]], np.uint8),
        targets=np.array([[5.0], [2.5]]),
        source="memory",
    )
    write_csv(dataset, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_bytes() == b"5,0,255\n2.5,1,2\n"


def test_write_csv_round_trips_floats_exactly(tmp_path):
    rng = np.random.default_rng(7)
    dataset = Dataset(inputs=rng.normal(size=(50, 4)), targets=rng.normal(size=(50, 2)), source="m")
    write_csv(dataset, tmp_path / "out.csv")
    back = read_csv(tmp_path / "out.csv", 0, 2)
    assert np.array_equal(back.inputs, dataset.inputs)
    assert np.array_equal(back.targets, dataset.targets)


def test_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = write(tmp_path, b"old contents\n", "out.csv")

    def half_then_fail(table, handle, write_options):
        handle.write(b"1,2\n")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(brain.data.csvfile.pacsv, "write_csv", half_then_fail)
    dataset = Dataset(inputs=np.zeros((1, 1), np.uint8), targets=np.zeros((1, 1)), source="m")
    with pytest.raises(DataError, match="No space left on device"):
        write_csv(dataset, path)
    assert path.read_bytes() == b"old contents\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_second_load_comes_from_the_cache(tmp_path, monkeypatch):
    path = write(tmp_path, b"1,2,3\n4,5,6\n")
    first = load_dataset(path)
    assert cache_path(path) == tmp_path / "data.csv.cache.npz"
    assert cache_path(path).exists()
    forbid_parsing(monkeypatch)
    second = load_dataset(path)
    assert np.array_equal(second.inputs, first.inputs) and second.inputs.dtype == np.uint8
    assert np.array_equal(second.targets, first.targets)
    assert second.source == str(path)


def test_cached_columns_are_mapped_when_aligned_in_the_file_and_copied_when_not(tmp_path, monkeypatch):
    """Whole-number inputs (uint8) are mapped; float64 ones land where the zip's headers leave them."""
    whole, fractions = write(tmp_path, b"1,2,3\n4,5,6\n", "whole.csv"), write(tmp_path, b"0.5,1.5\n2,3.25\n")
    parsed = [load_dataset(whole), load_dataset(fractions)]
    forbid_parsing(monkeypatch)
    whole_copy, fractions_copy = load_dataset(whole), load_dataset(fractions)
    assert mapped_from(whole_copy.inputs, cache_path(whole))
    assert fractions_copy.inputs.dtype == np.float64
    for copy, first in zip((whole_copy, fractions_copy), parsed, strict=True):
        for values, expected in ((copy.inputs, first.inputs), (copy.targets, first.targets)):
            assert values.flags.aligned and values.flags.c_contiguous and not values.flags.writeable
            assert values.dtype == expected.dtype and np.array_equal(values, expected)


def test_cache_is_rebuilt_when_the_csv_changes(tmp_path):
    path = write(tmp_path, b"1,2\n")
    load_dataset(path)
    stat = path.stat()
    path.write_bytes(b"3,4\n")  # same size: only the modification time tells
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert load_dataset(path).inputs.tolist() == [[4]]


def test_cache_is_rebuilt_for_other_target_columns(tmp_path):
    path = write(tmp_path, b"1,2,3\n")
    assert load_dataset(path).targets.tolist() == [[1]]
    assert load_dataset(path, target_end=2).targets.tolist() == [[1, 2]]
    assert load_dataset(path, target_end=2).inputs.tolist() == [[3]]


def test_corrupt_cache_is_silently_rebuilt(tmp_path, monkeypatch):
    path = write(tmp_path, b"1,2\n")
    cache_path(path).write_bytes(b"PK\x03\x04 not really a zip file")
    assert load_dataset(path).inputs.tolist() == [[2]]
    forbid_parsing(monkeypatch)
    assert load_dataset(path).inputs.tolist() == [[2]]


def test_no_cache_when_disabled(tmp_path):
    path = write(tmp_path, b"1,2\n")
    load_dataset(path, cache=False)
    assert not cache_path(path).exists()


@pytest.mark.slow
def test_full_mnist_csv_loads_and_the_second_load_comes_from_the_cache(mnist_dir, tmp_path, monkeypatch):
    """The whole MNIST training set as CSV (how fast: see the README's figures, not a timed test)."""
    path = tmp_path / "train.csv"
    convert_idx_to_csv(mnist_dir / "train-images-idx3-ubyte.gz", path)
    assert path.stat().st_size > 100 * 10**6
    parsed = load_dataset(path)
    forbid_parsing(monkeypatch)
    cached = load_dataset(path)
    assert parsed.inputs.shape == cached.inputs.shape == (60000, 784)
    assert np.array_equal(parsed.inputs, cached.inputs) and np.array_equal(parsed.targets, cached.targets)
    assert np.bincount(cached.targets[:, 0].astype(int)).tolist()[:3] == [5923, 6742, 5958]
