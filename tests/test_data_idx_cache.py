"""The uncompressed copy of a gzip-compressed IDX pair: used when it matches, rebuilt when not."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from test_data_idx import idx_bytes, three_two_by_two, write_pair

import brain.data.cache
import brain.data.idx
from brain.atomic import temp_files
from brain.data import cache_path, load_dataset

PIXELS = [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]


def forbid_decompressing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make reading an IDX file fail, so a load that succeeds must have come from the copy."""

    def refuse(*args, **kwargs):
        raise AssertionError("the IDX files were read")

    monkeypatch.setattr(brain.data.idx, "read_idx", refuse)


def rewrite_keeping_size_and_time(path, data: bytes) -> None:
    """Replace the file's bytes by ``data`` of the same length, its modification time kept to the ns."""
    before = path.stat()
    assert len(data) == before.st_size
    path.write_bytes(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def mapped_from(array: np.ndarray, path: Path) -> bool:
    """Whether ``array`` is a plain array whose bytes lie in a memory map of the file at ``path``.

    Read from ``/proc/self/maps``: the address ranges this process maps, each with its file.
    """
    if type(array) is not np.ndarray:  # not an np.memmap, which would pickle and save as one
        return False
    first, last = array.ctypes.data, array.ctypes.data + max(array.nbytes, 1)
    for line in Path("/proc/self/maps").read_text().splitlines():
        span, *_, name = line.split(maxsplit=5)
        low, high = (int(end, 16) for end in span.split("-"))
        if low <= first and last <= high:
            return name == str(path.resolve())
    return False


def npy_bytes(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array(out, array, allow_pickle=True)
    return out.getvalue()


def write_archive(path: Path, members: dict[str, bytes]) -> None:
    """A zip of ``members`` (name without ``.npy``: its bytes), stored uncompressed as ``np.savez`` does."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(f"{name}.npy", data)


def claim(path: Path, name: str, data: bytes) -> None:
    """Make the central directory describe member ``name`` as holding ``data`` (its CRC-32 and size)."""
    archive = bytearray(path.read_bytes())
    for entry in central_entries(archive, name):
        archive[entry + 16 : entry + 28] = (
            zlib.crc32(data).to_bytes(4, "little") + len(data).to_bytes(4, "little") * 2
        )
    path.write_bytes(bytes(archive))


def central_entries(archive: bytearray, name: str = ""):
    """The offsets of the central directory's entries (of member ``name`` only, if given)."""
    entry = archive.find(b"PK\x01\x02")
    while entry >= 0:
        if archive[entry + 46 : entry + 46 + len(name) + 4] == f"{name}.npy".encode() or not name:
            yield entry
        entry = archive.find(b"PK\x01\x02", entry + 4)


def the_stamp(images: Path) -> np.ndarray:
    with np.load(cache_path(images)) as npz:
        return npz["stamp"]


def assert_refused_and_rebuilt(images: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The copy beside ``images`` is not used (the pair is read again); the one written in its place is."""
    assert load_dataset(images).inputs.tolist() == PIXELS
    forbid_decompressing(monkeypatch)
    assert load_dataset(images).inputs.tolist() == PIXELS


def test_second_load_of_a_gzip_pair_comes_from_the_copy(tmp_path, monkeypatch):
    images = write_pair(tmp_path, *three_two_by_two(), gz=True)
    first = load_dataset(images)
    assert cache_path(images) == tmp_path / "tiny-images-idx3-ubyte.gz.cache.npz"
    assert cache_path(images).exists()
    forbid_decompressing(monkeypatch)
    second = load_dataset(images)
    assert second.inputs.tolist() == first.inputs.tolist() == PIXELS
    assert second.inputs.dtype == second.targets.dtype == np.uint8
    assert second.targets.tolist() == [[2], [0], [1]]
    assert second.source == str(images)
    assert not second.inputs.flags.writeable and not second.targets.flags.writeable
    assert mapped_from(second.inputs, cache_path(images)) and mapped_from(second.targets, cache_path(images))
    assert not mapped_from(first.inputs, cache_path(images))
    assert pickle.loads(pickle.dumps(second.inputs)).tolist() == PIXELS  # a plain array, not a memmap


def test_a_copy_is_made_of_a_compressed_pair_only_and_only_when_asked(tmp_path):
    raw = write_pair(tmp_path, *three_two_by_two())
    assert load_dataset(raw).inputs.tolist() == PIXELS
    assert not cache_path(raw).exists()  # nothing to save: the files are read as they are
    packed = write_pair(tmp_path, *three_two_by_two(), gz=True)
    load_dataset(packed, cache=False)
    assert not cache_path(packed).exists()
    load_dataset(packed)
    assert cache_path(packed).exists()


def test_copy_is_rebuilt_when_the_images_change(tmp_path, monkeypatch):
    images_bytes, labels_bytes = three_two_by_two()
    images = write_pair(tmp_path, images_bytes, labels_bytes, gz=True)
    load_dataset(images)
    stat = images.stat()
    images.write_bytes(gzip.compress(idx_bytes([3, 2, 2], bytes(range(100, 112))), mtime=0))
    os.utime(images, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert load_dataset(images).inputs[0].tolist() == [100, 101, 102, 103]
    forbid_decompressing(monkeypatch)
    assert load_dataset(images).inputs[0].tolist() == [100, 101, 102, 103]  # from the new copy


def test_copy_is_rebuilt_when_the_labels_change_within_one_tick(tmp_path, monkeypatch):
    """Same size, same modification time: the gzip trailer (CRC-32 of the content) tells them apart."""
    images_bytes, labels_bytes = three_two_by_two()
    images = write_pair(tmp_path, images_bytes, labels_bytes, gz=True)
    assert load_dataset(images).targets[:, 0].tolist() == [2, 0, 1]
    labels = tmp_path / "tiny-labels-idx1-ubyte.gz"
    rewrite_keeping_size_and_time(labels, gzip.compress(idx_bytes([3], bytes([1, 0, 2])), mtime=0))
    assert load_dataset(images).targets[:, 0].tolist() == [1, 0, 2]
    forbid_decompressing(monkeypatch)
    assert load_dataset(images).targets[:, 0].tolist() == [1, 0, 2]


def test_copy_made_with_other_labels_is_not_used(tmp_path, monkeypatch):
    images_bytes, labels_bytes = three_two_by_two()
    images = write_pair(tmp_path, images_bytes, labels_bytes, gz=True)
    load_dataset(images)
    other = tmp_path / "other-labels.gz"
    other.write_bytes(gzip.compress(idx_bytes([3], bytes([9, 9, 9])), mtime=0))
    assert load_dataset(images, labels_path=other).targets[:, 0].tolist() == [9, 9, 9]
    forbid_decompressing(monkeypatch)
    assert load_dataset(images, labels_path=other).targets[:, 0].tolist() == [9, 9, 9]


def cut_in_the_pixels(copy: bytes) -> bytes:
    return copy[: copy.index(bytes(range(12))) + 6]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda path: path.write_bytes(b"PK\x03\x04 not really a zip file"), id="not-a-zip"),
        pytest.param(lambda path: path.write_bytes(path.read_bytes()[:-40]), id="truncated"),
        pytest.param(
            lambda path: path.write_bytes(cut_in_the_pixels(path.read_bytes())), id="cut-in-the-images"
        ),
        pytest.param(lambda path: path.write_bytes(b""), id="empty"),
    ],
)
def test_corrupt_copy_is_refused_and_rebuilt(tmp_path, monkeypatch, damage):
    images = write_pair(tmp_path, *three_two_by_two(), gz=True)
    load_dataset(images)
    damage(cache_path(images))
    assert_refused_and_rebuilt(images, monkeypatch)


def test_copy_with_a_flipped_image_byte_fails_its_crc_and_is_rebuilt(tmp_path, monkeypatch):
    """Same size, same stamp: only the CRC-32 the archive records tells the damage."""
    images = write_pair(tmp_path, *three_two_by_two(), gz=True)
    load_dataset(images)
    copy = bytearray(cache_path(images).read_bytes())
    pixels = copy.index(bytes(range(12)))  # the inputs member's data, stored as it is
    copy[pixels + 5] ^= 0xFF
    cache_path(images).write_bytes(bytes(copy))
    assert_refused_and_rebuilt(images, monkeypatch)


def test_copy_whose_inputs_run_past_its_end_is_refused(tmp_path, monkeypatch):
    images = write_pair(tmp_path, *three_two_by_two(), gz=True)
    load_dataset(images)
    stamp = the_stamp(images)
    inputs = npy_bytes(np.zeros((3, 400), np.uint8))  # more than the central directory and its end hold
    members = {"stamp": npy_bytes(stamp), "targets": npy_bytes(np.zeros((3, 1), np.uint8))}
    write_archive(cache_path(images), {**members, "inputs": inputs[:-1000]})  # the last member, cut short
    claim(cache_path(images), "inputs", inputs)
    assert_refused_and_rebuilt(images, monkeypatch)


def test_copy_marked_encrypted_is_refused(tmp_path, monkeypatch):
    """zipfile raises RuntimeError for an encrypted member: no password; the copy is rebuilt."""
    images = write_pair(tmp_path, *three_two_by_two(), gz=True)
    load_dataset(images)
    archive = bytearray(cache_path(images).read_bytes())
    for entry in central_entries(archive):
        archive[entry + 8] |= 0x1  # general purpose flag bit 0: encrypted
    cache_path(images).write_bytes(bytes(archive))
    assert_refused_and_rebuilt(images, monkeypatch)


def test_compressed_copy_is_refused_and_rewritten_stored(tmp_path, monkeypatch):
    images = write_pair(tmp_path, *three_two_by_two(), gz=True)
    load_dataset(images)
    zeros = np.zeros((3, 4), np.uint8)
    np.savez_compressed(cache_path(images), stamp=the_stamp(images), inputs=zeros, targets=zeros[:, :1])
    assert load_dataset(images).inputs.tolist() == PIXELS  # the copy's zeros are not used
    forbid_decompressing(monkeypatch)
    copy = load_dataset(images)
    assert copy.inputs.tolist() == PIXELS and mapped_from(copy.inputs, cache_path(images))


@pytest.mark.parametrize("how", ["pickled", "raw"])
def test_copy_holding_python_objects_is_refused(tmp_path, monkeypatch, how):
    images = write_pair(tmp_path, *three_two_by_two(), gz=True)
    load_dataset(images)
    objects = np.array(PIXELS, dtype=object)
    if how == "pickled":  # what np.savez writes for an object array
        inputs = npy_bytes(objects)
    else:  # an object header over 8 bytes an item, as long as the header says: pointers, if mapped
        out = io.BytesIO()
        np.lib.format.write_array_header_1_0(out, np.lib.format.header_data_from_array_1_0(objects))
        inputs = out.getvalue() + bytes(range(96))
    members = {"stamp": npy_bytes(the_stamp(images)), "inputs": inputs}
    write_archive(cache_path(images), {**members, "targets": npy_bytes(np.zeros((3, 1), np.uint8))})
    assert_refused_and_rebuilt(images, monkeypatch)


def test_copy_holding_something_else_under_the_right_stamp_is_refused(tmp_path, monkeypatch):
    images = write_pair(tmp_path, *three_two_by_two(), gz=True)
    load_dataset(images)
    stamp = the_stamp(images)
    for inputs, targets in (
        (np.zeros((3, 4)), np.zeros((3, 1), np.uint8)),  # float pixels
        (np.zeros((3, 4), np.uint8), np.zeros((3, 2), np.uint8)),  # two label columns
        (np.zeros((2, 4), np.uint8), np.zeros((3, 1), np.uint8)),  # rows that do not pair up
        (np.zeros(12, np.uint8), np.zeros((3, 1), np.uint8)),  # not a matrix
    ):
        np.savez(cache_path(images), stamp=stamp, inputs=inputs, targets=targets)
        assert load_dataset(images).inputs.tolist() == PIXELS
    forbid_decompressing(monkeypatch)
    assert load_dataset(images).inputs.tolist() == PIXELS  # the last refusal wrote a good copy


def test_a_failed_write_leaves_no_copy_and_no_temp_file(tmp_path, monkeypatch):
    images = write_pair(tmp_path, *three_two_by_two(), gz=True)
    real_savez = np.savez

    def half_then_full_disk(handle, **arrays):
        handle.write(b"PK\x03\x04 half a copy")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(brain.data.cache.np, "savez", half_then_full_disk)
    assert load_dataset(images).inputs.tolist() == PIXELS
    assert not cache_path(images).exists()
    assert temp_files(cache_path(images)) == []
    monkeypatch.setattr(brain.data.cache.np, "savez", real_savez)
    load_dataset(images)
    forbid_decompressing(monkeypatch)
    assert load_dataset(images).inputs.tolist() == PIXELS


def test_mnist_from_the_copy_is_what_the_files_hold(mnist_dir, monkeypatch):
    images = mnist_dir / "t10k-images-idx3-ubyte.gz"
    decompressed = brain.data.idx.load_idx(images)
    load_dataset(images)  # writes the copy, or finds it
    forbid_decompressing(monkeypatch)
    copy = load_dataset(images)
    assert np.array_equal(copy.inputs, decompressed.inputs)
    assert np.array_equal(copy.targets, decompressed.targets)
    assert mapped_from(copy.inputs, cache_path(images)) and mapped_from(copy.targets, cache_path(images))
