"""The weight store: one ``.npz`` per network, readable with numpy alone.

``np.load(path, allow_pickle=False)`` opens it; nothing in it is pickled.  It is
written whole, atomically (temp file, fsync, rename), so a crash leaves either
the old or the new store.  A training pass that also appends a result row records
that row in the store (``result_file``, ``result_row``): a later run tells by it
whether the pass that wrote a store it finds was recorded (``actors/records/write_order.py``).

| key | type | meaning |
| --- | --- | --- |
| `format_version` | int | version of this layout of keys (now 1) |
| `weights` | float64[n_weights] | all weights, matrix after matrix, row-major (see below) |
| `layout_activations` | int[layers] | activation code per layer (see below) |
| `layout_neurons` | int[layers] | neurons per layer, without the bias |
| `layout_bias` | bool[layers] | whether the layer carries a bias neuron |
| `semantics` | str | the math the weights were trained with, e.g. `thesis` |
| `elu_alpha` | float | alpha of the ELU activation |
| `preprocessing` | str | input pre-processing: `None`, `Proportional` or `MeanSubtraction` |
| `total_lines` | int | lines trained over all passes |
| `total_seconds` | float | training time over all passes (round loops only) |
| `epoch` | int | completed training epochs |
| `epoch_lines_done` | int | lines of the current, unfinished epoch already trained (0 when none) |
| `shuffle_seed` | int | seed of the training-data shuffle, to resume an epoch in the same order |
| `batch_pass` | int | optional: the pass (1-based, file order) an interrupted run stopped in; 0 = none |
| `batch_repetition` | int | optional: the repetition of that pass (1-based); read by `run --resume` |
| `result_file` | str | optional: the ResultFile the pass that wrote this file appended its row to |
| `result_row` | str | optional: that row, as written (no newline); both empty when none |
| `pass_settings` | str | optional: a checkpoint's settings, JSON: `{"WorkerBatch": "100", …}` |
| `opt_<name>` | float64 arrays | optimizer state (reserved): ``Persisted.extra[name]`` |

Weight matrix l (l = 1 … layers-1) has shape (neurons of layer l-1 plus its bias,
neurons of layer l); the bias row is the last.  Activation codes: Identity 0,
Logistic 1, TanH 2, ReLU 3, LeakyReLU 4, ELU 5, SoftMax 6, SELU 7.  Scalars are 0-d
arrays, strings 0-d unicode arrays: ``str(npz["semantics"])``.
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np

from brain.activations import DEFAULT_ELU_ALPHA, Activation
from brain.atomic import Staged, atomic_write, stage
from brain.errors import PersistenceError
from brain.hyper import Semantics
from brain.layout import Layer, Layout
from brain.preprocessing import PreProcessing
from brain.user_files import open_input

FORMAT_VERSION = 1
EXTRA_PREFIX = "opt_"

_LAYOUT_KEYS = ("layout_activations", "layout_neurons", "layout_bias")
_REQUIRED = (
    "format_version", "weights", "layout_activations", "layout_neurons", "layout_bias",
    "semantics", "elu_alpha", "preprocessing", "total_lines", "total_seconds",
    "epoch", "epoch_lines_done", "shuffle_seed",
)  # fmt: skip

_ALLOWED_FILE = "a persistence .npz written by this program (format version 1)"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a member first; an empty archive
# How many times its stored size a member may expand to: deflate tops out at 1032.
_MAX_EXPANSION = {zipfile.ZIP_STORED: 1, zipfile.ZIP_DEFLATED: 1032}
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


@dataclass(frozen=True, eq=False)
class Persisted:
    """A network's weights and the training history needed to continue it."""

    layout: Layout
    weights: np.ndarray
    semantics: str = Semantics.THESIS.recorded
    elu_alpha: float = DEFAULT_ELU_ALPHA
    preprocessing: PreProcessing = PreProcessing.NONE
    total_lines: int = 0
    total_seconds: float = 0.0
    epoch: int = 0
    epoch_lines_done: int = 0
    shuffle_seed: int = 42
    batch_pass: int = 0
    batch_repetition: int = 0
    result_file: str = ""
    result_row: str = ""
    pass_settings: str = ""  # a checkpoint's: the settings its unfinished epoch was trained with (JSON)
    extra: Mapping[str, np.ndarray] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if self.weights.shape != (self.layout.n_weights,):
            raise ValueError(
                f"weights of shape {self.weights.shape} do not fit {self.layout.describe()} "
                f"({self.layout.n_weights} weights)"
            )


def persistence_exists(path: str | Path) -> bool:
    """Whether a pass would load ``path``: the program loads a non-empty persistence file."""
    path = Path(path)
    try:
        return path.is_file() and path.stat().st_size > 0
    except OSError:  # a name too long for the file system, a folder we may not search
        return False


def save_persistence(path: str | Path, persisted: Persisted) -> None:
    """Write ``persisted`` to ``path`` atomically; on any error the old file stays as it was.

    A file that cannot be written (a full disk, a folder we may not write) is a
    ``UserError`` naming it and the system's reason; no temp file is left then.
    """
    atomic_write(path, lambda handle: np.savez(handle, **_arrays(persisted)))


def stage_persistence(path: str | Path, persisted: Persisted) -> Staged:
    """Write ``persisted`` to a complete temp file beside ``path``; ``commit()`` puts it in place.

    Errors as in ``save_persistence``; ``path`` is not touched until the commit.
    """
    return stage(path, lambda handle: np.savez(handle, **_arrays(persisted)))


def _arrays(persisted: Persisted) -> dict[str, np.ndarray]:
    layers = persisted.layout.layers
    arrays: dict[str, np.ndarray] = {
        "format_version": np.int64(FORMAT_VERSION),
        "weights": np.ascontiguousarray(persisted.weights, dtype=np.float64),
        "layout_activations": np.array([int(layer.activation) for layer in layers], dtype=np.int64),
        "layout_neurons": np.array([layer.neurons for layer in layers], dtype=np.int64),
        "layout_bias": np.array([layer.bias for layer in layers], dtype=np.bool_),
        "semantics": np.str_(persisted.semantics),
        "elu_alpha": np.float64(persisted.elu_alpha),
        "preprocessing": np.str_(persisted.preprocessing.spelling),
        "total_lines": np.int64(persisted.total_lines),
        "total_seconds": np.float64(persisted.total_seconds),
        "epoch": np.int64(persisted.epoch),
        "epoch_lines_done": np.int64(persisted.epoch_lines_done),
        "shuffle_seed": np.int64(persisted.shuffle_seed),
        "batch_pass": np.int64(persisted.batch_pass),
        "batch_repetition": np.int64(persisted.batch_repetition),
        "result_file": np.str_(persisted.result_file),
        "result_row": np.str_(persisted.result_row),
        "pass_settings": np.str_(persisted.pass_settings),
    }
    for name, array in persisted.extra.items():
        arrays[EXTRA_PREFIX + name] = np.asarray(array, dtype=np.float64)
    return arrays


def load_persistence(path: str | Path, expected_layout: Layout | None = None) -> Persisted:
    """Read a persistence file; never changes it.

    Raises ``PersistenceError`` naming the file when it is missing or not a regular
    file (a FIFO, a device, a directory), not an npz,
    truncated or corrupt, lacks a key, holds weights of the wrong length, or holds
    a network other than ``expected_layout`` (the message names both layouts).  A
    file from anywhere is safe to try: nothing in it is unpickled, and no member is
    read before its size is checked against the bytes the file really holds.
    """
    path = Path(path)
    try:
        arrays = _read_arrays(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise PersistenceError(
            f"persistence file is unreadable or corrupt: {exc}", where=path, allowed=_ALLOWED_FILE
        ) from None
    missing = [key for key in _REQUIRED if key not in arrays]
    if missing:
        message = f"persistence file lacks {', '.join(missing)}"
        raise PersistenceError(message, where=path, allowed=_ALLOWED_FILE)
    try:
        persisted = _decode(arrays)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise PersistenceError(
            f"persistence file is malformed: {exc}", where=path, allowed=_ALLOWED_FILE
        ) from None
    if expected_layout is not None and persisted.layout != expected_layout:
        raise PersistenceError(
            f"persistence file holds the network {persisted.layout.describe()}, "
            f"but the network file describes {expected_layout.describe()}",
            where=path,
            allowed="a PersistenceFile written for this network, or a new file name",
        )
    return persisted


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of the npz at ``path`` by name, each member checked before it is read.

    ``np.load`` alone would allocate whatever size a member's header claims before
    reading it, and hand back a member that is not an array as raw bytes.
    """
    with open_input(path, "persistence file", PersistenceError) as handle:
        head = handle.read(len(np.lib.format.MAGIC_PREFIX))
        if head.startswith(np.lib.format.MAGIC_PREFIX):  # one array, as np.save writes it
            raise PersistenceError("not an .npz archive", where=path, allowed=_ALLOWED_FILE)
        if head[:4] not in _ZIP_MAGIC:
            raise ValueError("not a zip archive")
        size = os.fstat(handle.fileno()).st_size
        handle.seek(0)
        with zipfile.ZipFile(handle) as archive:
            return {
                info.filename.removesuffix(".npy"): _read_member(archive, info, size)
                for info in archive.infolist()
            }


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, archive_size: int) -> np.ndarray:
    """One ``.npy`` member, once its header agrees with its size and the archive's."""
    name = info.filename
    if info.compress_type not in _MAX_EXPANSION or info.flag_bits & 0x1:
        raise ValueError(f"{name} is encrypted or compressed in a way numpy does not write")
    if info.file_size > archive_size * _MAX_EXPANSION[info.compress_type]:
        raise ValueError(f"{name} claims {info.file_size} bytes, more than this file can hold")
    with archive.open(info) as member:
        try:
            version = np.lib.format.read_magic(member)
        except ValueError:
            raise ValueError(f"{name} is not a .npy array") from None
        read_header = _HEADER_READERS.get(version)
        if read_header is None:
            raise ValueError(f"{name}: .npy format version {version} is not supported")
        shape, _, dtype = read_header(member)
        if dtype.hasobject:
            raise ValueError(f"{name} holds Python objects, which are never unpickled")
        declared = member.tell() + dtype.itemsize * math.prod(shape)
    if declared != info.file_size:
        raise ValueError(f"{name} declares {shape} {dtype} ({declared} bytes) but holds {info.file_size}")
    with archive.open(info) as member:
        return np.lib.format.read_array(member, allow_pickle=False)


def _decode(arrays: Mapping[str, np.ndarray]) -> Persisted:
    version = int(arrays["format_version"])
    if version != FORMAT_VERSION:
        raise ValueError(f"format version {version} (this program reads {FORMAT_VERSION})")
    codes, neurons, bias = lists = [arrays[k] for k in _LAYOUT_KEYS]
    if any(a.ndim != 1 for a in lists) or len({len(a) for a in lists}) != 1:
        raise ValueError("the layout arrays are not three lists of equal length")
    if len(codes) < 2 or (neurons <= 0).any():
        raise ValueError("the layout needs two or more layers of positive size")
    layers = zip(codes, neurons, bias, strict=True)
    layout = Layout(tuple(Layer(Activation(int(c)), int(n), bool(b)) for c, n, b in layers))
    weights = arrays["weights"]
    if weights.dtype != np.float64 or weights.shape != (layout.n_weights,):
        raise ValueError(
            f"{weights.dtype} weights of shape {weights.shape}; {layout.describe()} needs "
            f"float64 of shape ({layout.n_weights},)"
        )
    extra = {k[len(EXTRA_PREFIX) :]: v for k, v in arrays.items() if k.startswith(EXTRA_PREFIX)}
    return Persisted(
        layout=layout,
        weights=weights,
        semantics=str(arrays["semantics"]),
        elu_alpha=float(arrays["elu_alpha"]),
        preprocessing=PreProcessing.parse(str(arrays["preprocessing"])),
        total_lines=int(arrays["total_lines"]),
        total_seconds=float(arrays["total_seconds"]),
        epoch=int(arrays["epoch"]),
        epoch_lines_done=int(arrays["epoch_lines_done"]),
        shuffle_seed=int(arrays["shuffle_seed"]),
        batch_pass=int(arrays.get("batch_pass", 0)),
        batch_repetition=int(arrays.get("batch_repetition", 0)),
        result_file=str(arrays.get("result_file", "")),
        result_row=str(arrays.get("result_row", "")),
        pass_settings=str(arrays.get("pass_settings", "")),
        extra=MappingProxyType(extra),
    )
