"""Fuzzed IDX files: any header and body is read as declared or is a ``DataError``, fast,
in memory bounded by the file's real size -- never by the sizes its header claims.

Budget and the long campaign: see ``test_fuzz_support``.
"""

from __future__ import annotations

import gzip
import math
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_support import BASE_BYTES, fuzz, peak_bytes

from brain.data import load_dataset, load_idx, read_idx
from brain.data.idx import IMAGES_MAGIC, LABELS_MAGIC
from brain.errors import DataError


@st.composite
def damage(draw, data: bytes) -> bytes:
    """``data`` with none, one or two faults: a byte changed (magic, type, dimension count or
    any other), a size replaced by a lie, bytes cut off, inserted or appended."""
    for fault in draw(st.lists(st.integers(0, 4), max_size=2)):
        at = draw(st.integers(0, len(data)))
        if fault == 0 and data:
            at = draw(st.one_of(st.integers(0, 3), st.integers(0, len(data) - 1)))
            data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]
        elif fault == 1:
            lie = draw(st.sampled_from([0, 1, 2**31, 2**32 - 1, 10**9]) | st.integers(0, 2**32 - 1))
            at = 4 + 4 * draw(st.integers(0, 3))
            data = data[:at] + lie.to_bytes(4, "big") + data[at + 4 :]
        elif fault == 2:
            data = data[:at]
        else:
            data = data[:at] + draw(st.binary(min_size=1, max_size=20)) + data[at:]
    return data


@st.composite
def idx_files(draw, magic: int, count: int | None = None) -> tuple[bytes, bytes]:
    """``(file bytes, the IDX bytes inside)``: a well-formed file of ``magic`` (of ``count``
    records), perhaps damaged, perhaps gzip-compressed and then perhaps cut short."""
    count = draw(st.integers(1, 4)) if count is None else count
    dims = [count] + [draw(st.integers(1, 5)) for _ in range((magic & 0xFF) - 1)]
    body = draw(st.binary(min_size=math.prod(dims), max_size=math.prod(dims)))
    plain = draw(damage(magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims) + body))
    if not draw(st.booleans()):
        return plain, plain
    data = gzip.compress(plain, mtime=0)
    return data[: draw(st.integers(0, len(data)))] if draw(st.booleans()) else data, plain


magics = st.sampled_from([IMAGES_MAGIC, LABELS_MAGIC])
any_idx_files = st.one_of(magics.flatmap(idx_files), st.binary(max_size=100).map(lambda junk: (junk, junk)))


def assert_bounded(peak: int, data: bytes, plain: bytes) -> None:
    """Memory for the file and its decompressed content, not for what the header claims."""
    assert peak <= BASE_BYTES + 2 * (len(data) + len(plain)), f"{peak} bytes for a {len(data)}-byte file"


def assert_as_declared(array: np.ndarray, plain: bytes) -> None:
    ndim = plain[3]
    dims = [int.from_bytes(plain[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    assert array.dtype == np.uint8 and list(array.shape) == dims
    assert array.tobytes() == plain[4 + 4 * ndim :]


@fuzz
@given(file=any_idx_files, magic=magics)
def test_any_idx_file_is_read_as_declared_or_is_a_data_error(tmp_path, file, magic):
    data, plain = file
    path = tmp_path / "x-images-idx3-ubyte"
    path.write_bytes(data)
    array, peak = peak_bytes(lambda: read_idx(path, magic))
    assert_bounded(peak, data, plain)
    if array is not None:
        assert int.from_bytes(plain[:4], "big") == magic
        assert_as_declared(array, plain)


pairs = st.integers(1, 4).flatmap(
    lambda count: st.tuples(idx_files(IMAGES_MAGIC, count), idx_files(LABELS_MAGIC, count))
)


@fuzz
@given(pair=pairs)
def test_any_pair_of_idx_files_loads_or_is_a_data_error(tmp_path, pair):
    images, labels = pair
    images_path, labels_path = tmp_path / "t-images-idx3-ubyte", tmp_path / "t-labels-idx1-ubyte"
    images_path.write_bytes(images[0])
    labels_path.write_bytes(labels[0])
    dataset, peak = peak_bytes(lambda: load_dataset(images_path))
    assert_bounded(peak, images[0] + labels[0], images[1] + labels[1])
    if dataset is not None:
        assert len(dataset) == int.from_bytes(images[1][4:8], "big") == int.from_bytes(labels[1][4:8], "big")
        assert dataset.targets.shape == (len(dataset), 1)


# --- lying headers, by hand -------------------------------------------------------


def header(magic: int, *dims: int) -> bytes:
    return magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)


@pytest.mark.parametrize("compress", [False, True])
def test_a_billion_images_claimed_by_a_100_byte_file_fail_fast_without_allocating(tmp_path, compress):
    raw = header(IMAGES_MAGIC, 10**9, 28, 28) + bytes(84)
    path = tmp_path / "lie-images-idx3-ubyte"
    path.write_bytes(gzip.compress(raw) if compress else raw)
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(DataError, match=r"truncated: ends inside record 1 of 1000000000"):
        read_idx(path, IMAGES_MAGIC)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert seconds < 1.0
    assert peak < 2**20  # the claim is 784 GB


def test_sizes_whose_product_overflows_32_bits_are_not_wrapped_around(tmp_path):
    # 2**16 * 2**16 * 2**16 records of nothing would be 0 if multiplied in uint32.
    path = tmp_path / "wrap-images-idx3-ubyte"
    path.write_bytes(header(IMAGES_MAGIC, 2**16, 2**16, 2**16))
    with pytest.raises(DataError, match="truncated"):
        load_idx(path, path)
