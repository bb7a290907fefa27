"""A command loads what it needs and no more, kernels come from numba's cache, and a run's log
says where its start went (``run_start`` → ``pass_start``, part by part)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
LINES = 200
# Run ARGV (a command of python -m actors) in a fresh interpreter, then print on the last line
# what it imported and which numba kernels of ours it loaded (their signatures), as JSON.
PROBE = """
import json, sys

from actors.cli import main

code = main(sys.argv[1:])
modules = sorted(sys.modules)
loaded = {}
if "numba" in sys.modules:
    from numba.core.registry import CPUDispatcher

    loaded = {
        f"{name}.{attribute}": len(value.signatures)
        for name, module in list(sys.modules.items()) if name.startswith(("actors", "brain"))
        for attribute, value in vars(module).items()
        if isinstance(value, CPUDispatcher) and value.signatures
    }
print(json.dumps({"code": code, "modules": modules, "loaded": loaded}))
"""
# Modules a command that only reads files and prints has no use for.
HEAVY = ("numba", "llvmlite", "matplotlib", "ray", "pyarrow", "torch", "structlog")
KERNEL_MODULES = ("brain.kernels", "brain.merge", "brain.modern.train", "brain.modern.minibatch")
HEAVY_PARTS = ("rich.progress", "rich.traceback", "brain.data.csvfile", "brain.data.fetch")


def probe(*argv: str | Path, env: dict[str, str] | None = None) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *map(str, argv)],
        cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["code"] == 0, done.stdout + done.stderr
    return report


def idx(magic: int, sizes: list[int], values: np.ndarray) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(size.to_bytes(4, "big") for size in sizes)
    return gzip.compress(header + values.astype(np.uint8).tobytes(), mtime=0)


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A batch on a gzip-compressed IDX pair (200 images of 2×2 pixels, 3 classes), run once
    with its log, on two pool processes: (its folder, the probe of that run)."""
    folder = tmp_path_factory.mktemp("startup")
    rng = np.random.default_rng(5)
    (folder / "tiny-images-idx3-ubyte.gz").write_bytes(
        idx(2051, [LINES, 2, 2], rng.integers(0, 256, 4 * LINES))
    )
    (folder / "tiny-labels-idx1-ubyte.gz").write_bytes(idx(2049, [LINES], rng.integers(0, 3, LINES)))
    (folder / "network.txt").write_text("Identity, 4\nELU, 5\nSoftMax, 3\n")
    (folder / "batch.txt").write_text(
        "NetworkFile: network.txt\nTrainFile: tiny-images-idx3-ubyte.gz\n"
        "TestFile: tiny-images-idx3-ubyte.gz\n"
        "PersistenceFile: weights.npz\nResultFile: results.csv\nParallel: 2\nWorkerBatch: 10\n"
        "Executor: process\nTrain: 1\nTest: 1\n"
    )
    return folder, probe("run", folder / "batch.txt", "--quiet", "--log-dir", folder / "logs")


def the_log(folder: Path) -> list[dict]:
    (log,) = (folder / "logs").glob("*.jsonl")
    return [json.loads(line) for line in log.read_text().splitlines()]


@pytest.mark.parametrize("command", ["check", "logs"])
def test_commands_that_read_and_print_import_no_kernels_plots_ray_or_csv_parser(logged_run, command):
    folder, _ = logged_run
    target = folder / "batch.txt" if command == "check" else next((folder / "logs").glob("*.jsonl"))
    modules = set(probe(command, target)["modules"])
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY or m in KERNEL_MODULES + HEAVY_PARTS)
    assert heavy == []


def test_a_process_run_loads_only_the_merge_kernels_in_its_own_process(logged_run):
    """The steps run in the pool, whose server loads their kernels; here only the coordinator's merges."""
    _, run = logged_run
    assert run["loaded"] == {
        "brain.merge._add_scaled_change": 1,
        "brain.merge._add_scaled_change_and_snapshot": 1,
    }


def test_the_log_splits_the_start_of_a_run_into_its_parts(logged_run):
    folder, _ = logged_run
    log = the_log(folder)
    (start,) = [record for record in log if record["event"] == "run_start"]
    first, second = [record for record in log if record["event"] == "pass_start"]
    startup = start["startup_parts"]
    assert set(startup) == {"imports", "pool_server", "kernels"}
    assert all(seconds >= 0 for seconds in startup.values())
    # The process' age has the kernel's 10 ms resolution; the parts are timed to the µs.
    assert startup["imports"] > 0.05  # an interpreter and numpy, at the very least
    assert sum(startup.values()) <= start["process_seconds"] + 0.02
    assert start["process_seconds"] < first["process_seconds"] < second["process_seconds"]
    pass_parts = {"network", "pool", "data", "shared_memory", "optimizer", "prepare"}
    assert set(first["setup_parts"]) == {"preflight", *pass_parts}  # the run's checks read its data
    assert set(second["setup_parts"]) == pass_parts
    for record in (first, second):
        assert all(seconds >= 0 for seconds in record["setup_parts"].values())
        assert sum(record["setup_parts"].values()) == pytest.approx(record["setup_seconds"], abs=1e-9)
    rows = (folder / "results.csv").read_text().splitlines()
    header = rows[0].split(";")
    setups = [float(row.split(";")[header.index("WorkerSetupTime")]) for row in rows[1:]]
    assert setups == pytest.approx([first["setup_seconds"], second["setup_seconds"]], rel=1e-6)


def test_a_second_interpreter_loads_every_kernel_from_numbas_cache():
    """Load every kernel a run can call, twice, each time in a fresh interpreter: the second
    compiles nothing (the first may, in a fresh checkout)."""
    warm_all = """
import sys
from numba.core.registry import CPUDispatcher

import brain.merge, brain.modern, brain.step

brain.step.warm_up()
brain.merge.warm_up()
brain.modern.warm_up()
hits = misses = 0
for name, module in list(sys.modules.items()):
    if name.startswith("brain"):
        for value in vars(module).values():
            if isinstance(value, CPUDispatcher):
                hits += sum(value.stats.cache_hits.values())
                misses += sum(value.stats.cache_misses.values())
print(hits, misses)
"""
    counts = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", warm_all], cwd=REPO, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr
        counts.append([int(word) for word in done.stdout.split()])
    hits, misses = counts[1]
    assert misses == 0
    assert hits >= 20  # thesis steps, merges and the modern kernels, in their input types


def test_start_up_runs_without_the_collector_and_freezes_what_it_built():
    import gc

    from actors.setup_time import collector_paused

    try:
        with collector_paused():
            assert not gc.isenabled()
            built = [[index] for index in range(100)]  # containers the collector tracks
        assert gc.isenabled()
        assert not any(obj is built for obj in gc.get_objects())  # frozen: out of every generation
        gc.disable()
        with collector_paused():
            pass
        assert not gc.isenabled()  # the state before the block is kept
    finally:
        gc.enable()
        gc.unfreeze()


def test_start_up_collects_the_garbage_made_before_it_rather_than_freeze_it():
    """A process that runs many batches (a study, the tests) must not keep the garbage of the
    batches before frozen forever: what it holds (a pool, a Ray actor's graph) is torn down."""
    import gc
    import weakref

    from actors.setup_time import collector_paused

    class Node:
        pass

    gc.disable()  # only the pause's own collection can free the cycle below
    try:
        node = Node()
        node.itself = node
        alive = weakref.ref(node)
        del node
        with collector_paused():
            pass
        assert alive() is None
    finally:
        gc.enable()
        gc.unfreeze()
