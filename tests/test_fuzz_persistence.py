"""Fuzzed persistence files: any file loads as a network or is a ``PersistenceError``; it
never runs code (no pickle) and never costs more memory than its real size.

Budget and the long campaign: see ``test_fuzz_support``.
"""

from __future__ import annotations

import functools
import io
import os
import pickle
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from test_fuzz_support import BASE_BYTES, fuzz, peak_bytes

from brain.activations import Activation
from brain.errors import PersistenceError
from brain.layout import Layout
from brain.persistence import Persisted, load_persistence, save_persistence
from brain.preprocessing import PreProcessing

LAYOUT = Layout.of(("Identity", 3), ("ELU", 2), ("SoftMax", 2))


def saved(persisted: Persisted) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "w.npz"
        save_persistence(path, persisted)
        return path.read_bytes()


@functools.cache
def good() -> bytes:
    return saved(Persisted(LAYOUT, np.linspace(-1, 1, LAYOUT.n_weights), extra={"m": np.zeros(3)}))


layouts = st.lists(
    st.tuples(st.sampled_from(list(Activation)), st.integers(1, 4)), min_size=2, max_size=4
).map(lambda layers: Layout.of(*layers))
counts = st.integers(0, 2**62)
networks = layouts.flatmap(
    lambda layout: st.builds(
        Persisted,
        st.just(layout),
        hnp.arrays(np.float64, layout.n_weights),
        semantics=st.text(st.characters(exclude_characters="\x00"), max_size=8),  # numpy strips NULs
        elu_alpha=st.floats(),
        preprocessing=st.sampled_from(list(PreProcessing)),
        total_lines=counts,
        total_seconds=st.floats(),
        epoch=counts,
        epoch_lines_done=counts,
        shuffle_seed=counts,
        extra=st.dictionaries(
            st.text("abcz_", min_size=1, max_size=3), hnp.arrays(np.float64, st.integers(0, 3))
        ),
    )
)


class Trap:
    """Unpickling it creates ``path``: proof that code ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path,)


def npy(array_header: dict, body: bytes) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, array_header)
    return buffer.getvalue() + body


def pickled_array(trap: str) -> bytes:
    """A .npy of one Python object: loading it with pickles allowed springs the trap."""
    return npy({"descr": "|O", "fortran_order": False, "shape": (1,)}, pickle.dumps([Trap(trap)]))


def zipped(members: dict[str, bytes], compression: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def members_of(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def arrays() -> st.SearchStrategy[np.ndarray]:
    dtypes = st.sampled_from(["<i8", "<f8", "|b1", "<U4", "<c16", "|u1", "<f2", ">f8", "<i4"])
    shapes = st.lists(st.integers(0, 4), max_size=2).map(tuple)
    return st.builds(lambda dtype, shape: np.zeros(shape, dtype), dtypes, shapes)


@st.composite
def member_faults(draw, trap: str) -> bytes:
    """A persistence file whose members were tampered with."""
    members = members_of(good())
    names = sorted(members)
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from([*names, "opt_x.npy", "weights", "extra.txt"]))
        fault = draw(st.integers(0, 5))
        if fault == 0:
            members.pop(name, None)
        elif fault == 1:
            members[name] = _as_npy(draw(arrays()))
        elif fault == 2:  # a header that claims far more than the member holds
            shape = (draw(st.sampled_from([10**8, 10**12, 2**62])),)
            members[name] = npy({"descr": "<f8", "fortran_order": False, "shape": shape}, bytes(16))
        elif fault == 3:  # pickled objects where numbers belong
            members[name] = pickled_array(trap)
        elif fault == 4:
            members[name] = draw(st.binary(max_size=64))
        else:
            members[name] = draw(
                st.sampled_from([pickle.dumps(Trap(trap)), b"\x93NUMPY\x03\x00\xff\xff\xff\xff"])
            )
    compression = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    return zipped(members, compression)


def _as_npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


@st.composite
def byte_faults(draw) -> bytes:
    """The bytes of a good persistence file, flipped, cut or extended."""
    data = bytearray(good())
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data) - 1))
        fault = draw(st.integers(0, 2))
        if fault == 0:
            data[at] = draw(st.integers(0, 255))
        elif fault == 1:
            del data[at:]
            if not data:
                break
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


def persistence_files(trap: str) -> st.SearchStrategy[bytes]:
    return st.one_of(
        networks.map(saved),
        member_faults(trap),
        byte_faults(),
        st.binary(max_size=200),
        st.sampled_from([pickle.dumps(Trap(trap)), b"PK\x05\x06" + bytes(18), b"\x93NUMPY"]),
    )


@pytest.fixture
def trap(tmp_path):
    """Where a pickle would leave its mark."""
    return str(tmp_path / "code-ran")


def check(path, data: bytes, trap: str):
    persisted, peak = peak_bytes(lambda: load_persistence(path))
    assert not os.path.exists(trap), "unpickling ran code from the file"
    assert peak <= BASE_BYTES + 16 * len(data), f"{peak} bytes for a {len(data)}-byte file"
    if persisted is not None:
        assert persisted.weights.dtype == np.float64
        assert persisted.weights.shape == (persisted.layout.n_weights,)
    return persisted


@fuzz
@given(data=st.data())
def test_any_persistence_file_loads_or_is_a_persistence_error(tmp_path, trap, data):
    raw = data.draw(persistence_files(trap))
    path = tmp_path / "w.npz"
    path.write_bytes(raw)
    check(path, raw, trap)


@fuzz
@given(network=networks)
def test_any_network_comes_back_as_it_was_saved(tmp_path, network):
    path = tmp_path / "w.npz"
    save_persistence(path, network)
    back = load_persistence(path, expected_layout=network.layout)
    assert np.array_equal(back.weights, network.weights, equal_nan=True)
    for name in ("semantics", "preprocessing", "total_lines", "epoch", "epoch_lines_done", "shuffle_seed"):
        assert getattr(back, name) == getattr(network, name)
    for name in ("elu_alpha", "total_seconds"):
        assert np.array_equal(getattr(back, name), getattr(network, name), equal_nan=True)
    assert back.extra.keys() == network.extra.keys()


# --- by hand ---------------------------------------------------------------------


def replaced(name: str, member: bytes) -> bytes:
    members = members_of(good())
    members[name] = member
    return zipped(members, zipfile.ZIP_STORED)


PICKLES = [
    pytest.param(lambda trap: pickle.dumps(Trap(trap)), id="a pickle"),
    pytest.param(pickled_array, id="an object array"),
]


@pytest.mark.parametrize("member", PICKLES)
def test_a_pickle_in_a_persistence_file_never_runs(tmp_path, trap, member):
    for raw in (member(trap), replaced("weights.npy", member(trap))):
        path = tmp_path / "w.npz"
        path.write_bytes(raw)
        with pytest.raises(PersistenceError):
            load_persistence(path)
        assert not os.path.exists(trap)


@pytest.mark.parametrize("member", PICKLES)
def test_the_trap_would_have_sprung(trap, member):
    # Without this the test above could pass with a pickle that does nothing.
    np.load(io.BytesIO(member(trap)), allow_pickle=True)
    assert os.path.isdir(trap)


@pytest.mark.parametrize("claimed", [10**8, 10**13])
def test_a_member_claiming_more_than_it_holds_fails_without_allocating(tmp_path, trap, claimed):
    header = {"descr": "<f8", "fortran_order": False, "shape": (claimed,)}
    raw = replaced("weights.npy", npy(header, bytes(16)))
    path = tmp_path / "w.npz"
    path.write_bytes(raw)
    persisted = check(path, raw, trap)
    assert persisted is None


def test_a_member_that_is_not_an_array_is_a_persistence_error(tmp_path):
    path = tmp_path / "w.npz"
    path.write_bytes(replaced("layout_neurons.npy", b"just bytes, no npy header"))
    with pytest.raises(PersistenceError, match="layout_neurons"):
        load_persistence(path)
