"""Each guard of the persistence loader, on its own: a file that only that guard refuses.

Every file below is a good persistence file with one fault that slips past every
other check — without the guard it would load, load something else, or fail with a
traceback — so each test fails if its guard alone is removed.  Guards already pinned
alone elsewhere: a bare ``.npy`` (``test_persistence``), a member that is not ``.npy``
(``test_fuzz_persistence``), a member whose header claims more than it holds (ibid.,
by memory), a missing key, another format version, the weights' dtype and length,
another network (``test_persistence``).
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile

import numpy as np
import pytest
from test_fuzz_persistence import LAYOUT, Trap, good, members_of, npy, replaced

from brain.errors import PersistenceError
from brain.persistence import load_persistence


def refused(tmp_path, data: bytes, reason: str) -> str:
    """Load ``data`` as a persistence file: a PersistenceError naming the file and ``reason``."""
    path = tmp_path / "w.npz"
    path.write_bytes(data)
    with pytest.raises(PersistenceError) as caught:
        load_persistence(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert reason in message
    return message


def archive(edit=None, compression: int = zipfile.ZIP_STORED, members: dict | None = None) -> bytes:
    """The good file's members zipped again; ``edit(archive)`` may change their entries before the
    central directory is written (the loader trusts that directory, as zipfile does)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zipped:
        for name, data in (members or members_of(good())).items():
            zipped.writestr(name, data)
        if edit is not None:
            edit(zipped)
    return buffer.getvalue()


def npy_bytes(array: np.ndarray, version: tuple[int, int] | None = None) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, version=version, allow_pickle=False)
    return buffer.getvalue()


def test_the_archive_rebuilt_here_loads(tmp_path):
    # The base of the faults below: only the fault makes a file unreadable.
    for compression in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        path = tmp_path / "w.npz"
        path.write_bytes(archive(compression=compression))
        assert load_persistence(path, expected_layout=LAYOUT).layout == LAYOUT


def test_a_zip_behind_other_bytes_is_refused_by_the_zip_signature_check(tmp_path):
    data = b"#!/bin/sh\nexit 0\n" + good()
    with zipfile.ZipFile(io.BytesIO(data)) as zipped:  # zipfile alone would read it
        assert zipped.testzip() is None
    refused(tmp_path, data, "not a zip archive")


def test_a_member_compressed_as_numpy_never_writes_is_refused_by_the_method_check(tmp_path):
    refused(tmp_path, archive(compression=zipfile.ZIP_BZIP2), "compressed in a way numpy does not write")


def test_a_member_marked_encrypted_is_refused_by_the_encryption_flag_check(tmp_path):
    def encrypt(zipped: zipfile.ZipFile) -> None:
        zipped.getinfo("weights.npy").flag_bits |= 0x1

    refused(tmp_path, archive(encrypt), "weights.npy is encrypted")


def test_a_size_larger_than_the_file_is_refused_by_the_expansion_check(tmp_path):
    # The member's header and the zip directory agree on 64 KiB of weights; the file holds 16 bytes.
    claimed = 8192
    header = {"descr": "<f8", "fortran_order": False, "shape": (claimed,)}
    member = npy(header, bytes(16))
    members = {**members_of(good()), "weights.npy": member}

    def inflate(zipped: zipfile.ZipFile) -> None:
        zipped.getinfo("weights.npy").file_size = len(member) - 16 + 8 * claimed

    data = archive(inflate, members=members)
    assert len(data) < len(member) - 16 + 8 * claimed
    refused(tmp_path, data, "more than this file can hold")


def test_a_npy_format_version_numpy_writes_but_the_loader_does_not_read_is_refused(tmp_path):
    weights = np.linspace(-1, 1, LAYOUT.n_weights)
    refused(tmp_path, replaced("weights.npy", npy_bytes(weights, (3, 0))), "format version (3, 0)")


def test_a_pickled_member_padded_to_its_declared_size_is_refused_by_the_object_check(tmp_path):
    trap = str(tmp_path / "code-ran")
    body = pickle.dumps([Trap(trap)])
    body += bytes(-len(body) % 8)  # pickle stops at its STOP opcode: the padding is never read
    header = {"descr": "|O", "fortran_order": False, "shape": (len(body) // 8,)}
    refused(tmp_path, replaced("weights.npy", npy(header, body)), "weights.npy holds Python objects")
    assert not os.path.exists(trap)


def test_a_member_longer_than_its_header_declares_is_refused_by_the_size_check(tmp_path):
    member = members_of(good())["weights.npy"] + bytes(8)
    refused(tmp_path, replaced("weights.npy", member), "but holds")


def decoded_fault(**arrays: np.ndarray) -> bytes:
    """The good file with some arrays replaced, written by numpy itself."""
    with np.load(io.BytesIO(good())) as npz:
        every = {key: npz[key] for key in npz.files}
    every.update(arrays)
    buffer = io.BytesIO()
    np.savez(buffer, **every)
    return buffer.getvalue()


def test_a_layout_column_of_one_row_arrays_is_refused_by_the_shape_check(tmp_path):
    neurons = np.array([[layer.neurons] for layer in LAYOUT.layers])
    refused(tmp_path, decoded_fault(layout_neurons=neurons), "three lists of equal length")


def test_a_network_of_one_layer_is_refused_by_the_layer_count_check(tmp_path):
    one_layer = {
        "layout_activations": np.array([0]),
        "layout_neurons": np.array([3]),
        "layout_bias": np.array([False]),
        "weights": np.zeros(0),  # what one layer holds: no weight matrix
    }
    refused(tmp_path, decoded_fault(**one_layer), "two or more layers of positive size")


def test_a_layer_of_no_neurons_is_refused_by_the_size_check(tmp_path):
    # Identity 3 / ELU 0 / SoftMax 2: a (4, 0) and a (1, 2) matrix, 2 weights in all.
    fault = decoded_fault(layout_neurons=np.array([3, 0, 2]), weights=np.zeros(2))
    refused(tmp_path, fault, "two or more layers of positive size")
