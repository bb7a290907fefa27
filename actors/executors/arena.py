"""Shared memory for a run: the data sets and the connectomes, mapped by every process.

Each array is a ``.npy`` file in a private folder on a RAM-backed file system
(``/dev/shm`` where there is one) mapped with ``numpy.memmap``: the coordinator
writes, the pool's processes map the same pages, and a round moves only slice
bounds and file names — never images or weights.  Files, unlike
``multiprocessing.shared_memory`` segments, need no resource tracker: the arena
removes its folder when it closes, and a folder left by a killed run is easy to
recognise (``goconcurrent-*``) and is removed by the next run of the same user.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_PREFIX = "goconcurrent-"


@dataclass(frozen=True, slots=True)
class ArraySpec:
    """Where a shared array lives: small and picklable, sent with every step."""

    path: str
    dtype: str
    shape: tuple[int, ...]


_attached: dict[str, np.ndarray] = {}


def attach(spec: ArraySpec) -> np.ndarray:
    """The array behind ``spec``, mapped once per process and then reused."""
    array = _attached.get(spec.path)
    if array is None:
        array = np.asarray(np.load(spec.path, mmap_mode="r+"))
        _attached[spec.path] = array
    return array


def forget(paths) -> None:
    """Drop this process' mappings of ``paths`` (their arena is gone)."""
    for path in paths:
        _attached.pop(path, None)


class Arena:
    """A folder of shared arrays; ``close()`` unmaps and removes them all.

    Use as a context manager.  Closing is idempotent and never raises.
    """

    def __init__(self, root: str | Path | None = None) -> None:
        base = Path(root) if root else shared_root()
        _remove_abandoned(base)
        self.folder = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=base))
        self._specs: list[ArraySpec] = []

    def array(self, name: str, shape: tuple[int, ...], dtype: np.dtype | str) -> tuple[np.ndarray, ArraySpec]:
        """A new zero-filled shared array and its spec."""
        path = self.folder / f"{name}.npy"
        mapped = np.lib.format.open_memmap(path, mode="w+", dtype=np.dtype(dtype), shape=shape)
        spec = ArraySpec(str(path), np.dtype(dtype).str, tuple(shape))
        array = np.asarray(mapped)
        _attached[spec.path] = array
        self._specs.append(spec)
        return array, spec

    def share(self, name: str, values: np.ndarray) -> tuple[np.ndarray, ArraySpec]:
        """A shared copy of ``values``."""
        array, spec = self.array(name, values.shape, values.dtype)
        array[...] = values
        return array, spec

    def close(self) -> None:
        forget(spec.path for spec in self._specs)
        self._specs.clear()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Arena:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def shared_root() -> Path:
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm
    return Path(tempfile.gettempdir())


def _remove_abandoned(base: Path) -> None:
    """Remove arenas whose process is gone (a run killed with SIGKILL leaves its folder)."""
    for folder in base.glob(f"{_PREFIX}*"):
        try:
            pid = int(folder.name[len(_PREFIX) :].split("-", 1)[0])
        except ValueError:
            continue
        if pid != os.getpid() and not _alive(pid):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True
