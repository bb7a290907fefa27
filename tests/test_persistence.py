"""The weight store: exact round trips, plain-numpy readable, never half-written, never mixed up."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

import brain.persistence as persistence
from brain.errors import PersistenceError, UserError
from brain.layout import Layout
from brain.persistence import (
    Persisted,
    load_persistence,
    persistence_exists,
    save_persistence,
)
from brain.preprocessing import PreProcessing

LAYOUT = Layout.of(("Identity", 4), ("ELU", 3), ("SoftMax", 2))  # 5*3 + 4*2 = 23 weights


def stored(**changes) -> Persisted:
    weights = np.random.default_rng(1).uniform(-0.1, 0.1, 23)
    fields = dict(
        layout=LAYOUT, weights=weights, semantics="thesis", elu_alpha=0.75,
        preprocessing=PreProcessing.MeanSubtraction, total_lines=120000,
        total_seconds=65.25, epoch=2, epoch_lines_done=3100, shuffle_seed=9,
        extra={"m": np.arange(23.0), "v": np.ones((2, 3))},
    )  # fmt: skip
    fields.update(changes)
    return Persisted(**fields)


def test_layout_has_the_expected_number_of_weights():
    assert LAYOUT.n_weights == 5 * 3 + 4 * 2


def test_save_then_load_gives_identical_weights_and_metadata(tmp_path):
    path = tmp_path / "w.npz"
    original = stored()
    save_persistence(path, original)
    back = load_persistence(path, expected_layout=LAYOUT)
    assert back.layout == LAYOUT
    assert back.weights.dtype == np.float64
    assert np.array_equal(back.weights, original.weights)
    assert (back.semantics, back.elu_alpha, back.preprocessing) == (
        "thesis",
        0.75,
        PreProcessing.MeanSubtraction,
    )
    assert (back.total_lines, back.total_seconds) == (120000, 65.25)
    assert (back.epoch, back.epoch_lines_done, back.shuffle_seed) == (2, 3100, 9)
    assert sorted(back.extra) == ["m", "v"]
    assert np.array_equal(back.extra["m"], np.arange(23.0))
    assert np.array_equal(back.extra["v"], np.ones((2, 3)))


@pytest.mark.parametrize("kind", list(PreProcessing))
def test_every_preprocessing_round_trips(tmp_path, kind):
    save_persistence(tmp_path / "w.npz", stored(preprocessing=kind))
    assert load_persistence(tmp_path / "w.npz").preprocessing is kind


def test_plain_numpy_reads_every_documented_key_without_pickle(tmp_path):
    path = tmp_path / "w.npz"
    save_persistence(path, stored())
    documented = set(re.findall(r"^\| `(\w+)` \|", persistence.__doc__, flags=re.MULTILINE))
    with np.load(path, allow_pickle=False) as npz:
        assert set(npz.files) == documented | {"opt_m", "opt_v"}
        assert int(npz["format_version"]) == 1
        assert str(npz["semantics"]) == "thesis" and str(npz["preprocessing"]) == "MeanSubtraction"
        assert npz["layout_activations"].tolist() == [0, 5, 6]
        assert npz["layout_neurons"].tolist() == [4, 3, 2]
        assert npz["layout_bias"].tolist() == [True, True, False]
        assert npz["weights"].shape == (23,)
        assert all(npz[key].dtype != object for key in npz.files)


def test_a_file_of_another_network_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "w.npz"
    save_persistence(path, stored())
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns
    other = Layout.of(("Identity", 4), ("ReLU", 3), ("SoftMax", 2))
    with pytest.raises(PersistenceError) as caught:
        load_persistence(path, expected_layout=other)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert "Identity 4 / ELU 3 / SoftMax 2" in message
    assert "Identity 4 / ReLU 3 / SoftMax 2" in message
    assert "(allowed: a PersistenceFile written for this network" in message
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime


def _truncated(tmp_path):
    save_persistence(tmp_path / "full.npz", stored())
    return (tmp_path / "full.npz").read_bytes()[:400]


def _npy(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros(23))
    return (tmp_path / "a.npy").read_bytes()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (lambda tmp: b"", "unreadable or corrupt"),
        (lambda tmp: b"Identity, 4\nSoftMax, 2\n", "unreadable or corrupt"),
        (lambda tmp: os.urandom(2000), "unreadable or corrupt"),
        (_truncated, "unreadable or corrupt"),
        (_npy, "not an .npz archive"),
    ],
    ids=["empty", "text", "noise", "truncated", "npy"],
)
def test_a_damaged_file_is_a_persistence_error_naming_it(tmp_path, content, reason):
    path = tmp_path / "w.npz"
    path.write_bytes(content(tmp_path))
    with pytest.raises(PersistenceError) as caught:
        load_persistence(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert reason in str(caught.value)


def _arrays(tmp_path) -> dict[str, np.ndarray]:
    save_persistence(tmp_path / "good.npz", stored())
    with np.load(tmp_path / "good.npz") as npz:
        return {key: npz[key] for key in npz.files}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda a: a.pop("epoch"), "lacks epoch"),
        (lambda a: a.update(weights=np.zeros(22)), "needs float64 of shape (23,)"),
        (lambda a: a.update(weights=np.zeros(23, np.float32)), "float32 weights"),
        (lambda a: a.update(format_version=np.int64(2)), "format version 2"),
        (lambda a: a.update(layout_activations=np.array([0, 9, 6])), "malformed"),
        (lambda a: a.update(layout_neurons=np.array([4, 3])), "equal length"),
        (lambda a: a.update(preprocessing=np.str_("Median")), "malformed"),
        (lambda a: a.update(semantics=np.array([{"a": 1}], dtype=object)), "corrupt"),
    ],
    ids=["missing-key", "short", "float32", "version", "activation", "ragged", "prep", "pickle"],
)
def test_a_malformed_file_is_a_persistence_error_naming_it(tmp_path, change, reason):
    arrays = _arrays(tmp_path)
    change(arrays)
    path = tmp_path / "w.npz"
    np.savez(path, **arrays)
    with pytest.raises(PersistenceError) as caught:
        load_persistence(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert reason in str(caught.value)


def test_a_missing_file_is_a_persistence_error(tmp_path):
    with pytest.raises(PersistenceError, match="persistence file not found"):
        load_persistence(tmp_path / "none.npz")


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_crash_during_the_save_leaves_the_old_file(tmp_path, monkeypatch, failing):
    path = tmp_path / "w.npz"
    save_persistence(path, stored(epoch=1))
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("power cut")

    monkeypatch.setattr(os, failing, crash)
    with pytest.raises(UserError, match=r"w\.npz: cannot write: power cut"):
        save_persistence(path, stored(epoch=2))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_persistence(path).epoch == 1
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]


def test_persistence_exists_only_for_a_non_empty_file(tmp_path):
    path = tmp_path / "w.npz"
    assert not persistence_exists(path)
    path.write_bytes(b"")
    assert not persistence_exists(path)
    save_persistence(path, stored())
    assert persistence_exists(path)
    assert not persistence_exists(tmp_path)  # a folder is not a persistence file


def test_weights_that_do_not_fit_the_layout_are_a_bug():
    with pytest.raises(ValueError, match="do not fit"):
        Persisted(LAYOUT, np.zeros(22))
