"""The pre-flight: `check` and the start of `run` refuse, in one line each, whatever a run would refuse later.

Every refusal is met through the command line (``actors.cli.main``), by ``check`` and
by ``run``, before anything is trained; special files are made in a temporary folder
(never the machine's own ``/dev``) and must be left as they were.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from actors.cli import main
from actors.records.results import HEADER, read_results
from brain.atomic import atomic_open
from brain.errors import UserError
from brain.persistence import load_persistence

# A 3-input, 2-output network and CSV data for it (class index first): a pass takes milliseconds.
NETWORK = "Identity, 3\nSoftMax, 2\n"
TRAIN = "0,1,2,3\n1,4,5,6\n0,7,8,9\n1,1,1,1\n"
TRAINED = "Train epoch"  # the summary line `run` prints after a training pass


@pytest.fixture
def folder(tmp_path) -> Path:
    (tmp_path / "net.txt").write_text(NETWORK)
    (tmp_path / "train.csv").write_text(TRAIN)
    return tmp_path


@pytest.fixture(autouse=True)
def unblock_fifos(tmp_path) -> Iterator[None]:
    """Should a reader wait on a FIFO of the test (the failure under test), let it read an
    end of file after a while, so that the test fails instead of hanging."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(10.0):
            for path in (p for p in tmp_path.rglob("*") if p.is_fifo()):
                # Opening succeeds only when a reader is waiting; closing gives it an end of file.
                with contextlib.suppress(OSError):
                    os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    yield
    done.set()
    watcher.join()


def write_batch(folder: Path, body: str, name: str = "b.txt") -> Path:
    batch = folder / name
    batch.write_text(f"NetworkFile: net.txt\nTrainFile: train.csv\nExecutor: inline\n{body}")
    return batch


def cli(capsys, command: str, batch: Path, *options: str) -> tuple[int, str, str]:
    """``python -m actors COMMAND BATCH …`` in this process: (exit status, stdout, stderr)."""
    extra = ("--no-log", "--quiet") if command == "run" else ()
    status = main([command, str(batch), *extra, *options])
    out, err = capsys.readouterr()
    return status, out, err


def assert_refused(capsys, batch: Path, *fragments: str, options: tuple[str, ...] = ()) -> None:
    """``check`` and ``run`` both exit 2 with one line holding ``fragments``, and nothing is trained."""
    for command in ("check", "run"):
        status, out, err = cli(capsys, command, batch, *options)
        lines = err.strip().splitlines()
        assert status == 2, f"{command}: exit {status}, stdout {out!r}, stderr {err!r}"
        assert len(lines) == 1, f"{command}: {err!r}"
        for fragment in fragments:
            assert fragment in lines[0], f"{command}: {fragment!r} not in {lines[0]!r}"
        assert "not found" not in lines[0]
        assert TRAINED not in out


# --- special files: a FIFO, a character device, a directory -----------------------------


def make_fifo(path: Path) -> str:
    os.mkfifo(path)
    return "a FIFO"


def make_device(path: Path) -> str:
    if os.geteuid() != 0:
        pytest.skip("making a device node (mknod) needs root")
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # what /dev/null is, but ours
    return "a character device"


def make_directory(path: Path) -> str:
    path.mkdir()
    return "a directory"


SPECIALS: dict[str, Callable[[Path], str]] = {
    "fifo": make_fifo, "device": make_device, "directory": make_directory,
}  # fmt: skip
IS_KIND = {"fifo": stat.S_ISFIFO, "device": stat.S_ISCHR, "directory": stat.S_ISDIR}


@pytest.mark.parametrize("special", SPECIALS)
@pytest.mark.parametrize("directive", ["NetworkFile", "TrainFile"])
def test_a_special_file_named_as_an_input_is_refused_as_what_it_is(folder, capsys, special, directive):
    kind = SPECIALS[special](folder / "special")
    batch = folder / "b.txt"
    batch.write_text(
        "NetworkFile: net.txt\nTrainFile: train.csv\nExecutor: inline\n"
        f"{directive}: special\nTrain: 1\n"
    )
    assert_refused(capsys, batch, str(folder / "special"), f"is {kind}, not a regular file")


@pytest.mark.parametrize("special", SPECIALS)
def test_a_special_file_named_as_the_batch_file_is_refused_as_what_it_is(folder, capsys, special):
    kind = SPECIALS[special](folder / "batch")
    assert_refused(capsys, folder / "batch", str(folder / "batch"), f"batch file is {kind}")


@pytest.mark.parametrize("special", SPECIALS)
@pytest.mark.parametrize("directive", ["PersistenceFile", "ResultFile"])
def test_a_special_file_named_as_an_output_is_refused_and_left_as_it_was(folder, capsys, special, directive):
    target = folder / "out"
    kind = SPECIALS[special](target)
    batch = write_batch(folder, f"{directive}: out\nTrain: 1\n")
    assert_refused(capsys, batch, f"{directive} {target} is {kind}, not a regular file")
    assert IS_KIND[special](os.lstat(target).st_mode)


@pytest.mark.parametrize("special", SPECIALS)
def test_a_special_file_in_place_of_the_checkpoint_is_refused(folder, capsys, special):
    batch = write_batch(folder, "Train: 1\n")  # no PersistenceFile: an interrupt saves beside the batch
    checkpoint = folder / "b.txt.checkpoint.npz"
    kind = SPECIALS[special](checkpoint)
    assert_refused(capsys, batch, f"{checkpoint} is {kind}")
    assert IS_KIND[special](os.lstat(checkpoint).st_mode)


def test_a_symlink_to_a_special_file_is_refused_and_both_stay(folder, capsys):
    make_fifo(folder / "fifo")
    (folder / "link.npz").symlink_to(folder / "fifo")
    batch = write_batch(folder, "PersistenceFile: link.npz\nTrain: 1\n")
    assert_refused(capsys, batch, "is a FIFO", f"its link leads to {folder / 'fifo'}")
    assert (folder / "link.npz").is_symlink() and (folder / "fifo").is_fifo()


@pytest.mark.parametrize("directive", ["PersistenceFile", "ResultFile"])
def test_an_output_linked_through_proc_to_a_pipe_is_refused_as_a_fifo(folder, capsys, directive):
    # /dev/stdout of a piped command: /proc/self/fd/1 leads to "pipe:[N]", which is no path at all.
    read_end, write_end = os.pipe()
    try:
        (folder / "out").symlink_to(f"/proc/self/fd/{write_end}")
        batch = write_batch(folder, f"{directive}: out\nTrain: 1\n")
        assert_refused(capsys, batch, f"{directive} {folder / 'out'} is a FIFO, not a regular file")
        assert (folder / "out").is_symlink()
        os.write(write_end, b"still ours")
        assert os.read(read_end, 100) == b"still ours"
    finally:
        os.close(read_end)
        os.close(write_end)


def test_an_output_in_a_folder_where_no_file_can_be_made_is_refused_even_for_root(folder, capsys):
    # access() tells root that /proc is writable; only making a file there shows it is not.
    batch = write_batch(folder, "ResultFile: /proc/actors-out.csv\nTrain: 1\n")
    assert_refused(capsys, batch, "ResultFile /proc/actors-out.csv cannot be created: the folder /proc")
    assert not os.path.lexists("/proc/actors-out.csv")


@pytest.mark.parametrize("make", [make_fifo, lambda path: path.write_text("")], ids=["fifo", "file"])
def test_a_log_folder_that_is_not_a_folder_is_refused(folder, capsys, make):
    make(folder / "logs")
    batch = write_batch(folder, "Train: 1\n")
    for command in ("run", "check"):
        status = main([command, str(batch), "--log-dir", str(folder / "logs")])
        err = capsys.readouterr().err
        assert status == 2 and len(err.strip().splitlines()) == 1, err
        assert "not a folder" in err


# --- symlinks are written through --------------------------------------------------------


def test_outputs_named_through_symlinks_are_written_through_and_the_links_stay(folder, capsys):
    store, table = folder / "elsewhere" / "w.npz", folder / "elsewhere" / "r.csv"
    store.parent.mkdir()
    (folder / "w.npz").symlink_to(store)  # a dangling link: its target is made
    table.write_text(HEADER + "\n")
    (folder / "r.csv").symlink_to(table)
    batch = write_batch(folder, "PersistenceFile: w.npz\nResultFile: r.csv\nTrain: 1\n")
    status, _, err = cli(capsys, "run", batch)
    assert status == 0, err
    assert (folder / "w.npz").is_symlink() and (folder / "r.csv").is_symlink()
    assert load_persistence(store).epoch == 1
    assert [row["Mode"] for row in read_results(table)] == ["train"]
    assert sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp")) == []


def test_atomic_open_never_writes_through_a_proc_link_to_a_pipe(tmp_path):
    read_end, write_end = os.pipe()
    try:
        (tmp_path / "out").symlink_to(f"/proc/self/fd/{write_end}")
        refused = pytest.raises(UserError, match="is a FIFO, not a regular file")
        with refused, atomic_open(tmp_path / "out", "w") as out:
            out.write("never")
        assert (tmp_path / "out").is_symlink() and os.listdir(tmp_path) == ["out"]
    finally:
        os.close(read_end)
        os.close(write_end)


def test_atomic_open_replaces_a_symlinks_target_with_a_temp_file_in_the_targets_folder(tmp_path):
    target_folder, link_folder = tmp_path / "target", tmp_path / "link"
    target_folder.mkdir()
    link_folder.mkdir()
    (target_folder / "f").write_text("old")
    (link_folder / "f").symlink_to(target_folder / "f")
    with atomic_open(link_folder / "f", "w") as handle:
        handle.write("new")
        assert [p.name for p in link_folder.iterdir()] == ["f"]
        assert len([p for p in target_folder.iterdir() if p.name.endswith(".tmp")]) == 1
    assert (link_folder / "f").is_symlink() and (target_folder / "f").read_text() == "new"


@pytest.mark.parametrize("special", SPECIALS)
def test_atomic_open_never_replaces_a_special_file(tmp_path, special):
    path = tmp_path / "special"
    kind = SPECIALS[special](path)
    with pytest.raises(UserError, match=f"is {kind}, not a regular file"), atomic_open(path) as handle:
        handle.write(b"data")
    assert IS_KIND[special](os.lstat(path).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["special"]  # no temporary file left


# --- settings, tables, memory, executors -------------------------------------------------


def test_a_seed_beyond_int64_is_refused_where_it_is_written(folder, capsys):
    batch = write_batch(folder, "PersistenceFile: w.npz\nSeed: 99999999999999999999999999999\nTrain: 1\n")
    assert_refused(capsys, batch, f"{batch}:5:", "Seed", "9223372036854775807")
    assert not (folder / "w.npz").exists()


def test_a_result_table_with_other_columns_is_refused_before_any_training(folder, capsys):
    (folder / "r.csv").write_text("Mode;Accuracy\nTrain;0.9\n")
    before = (folder / "r.csv").read_bytes()
    batch = write_batch(folder, "PersistenceFile: w.npz\nResultFile: r.csv\nTrain: 1\n")
    assert_refused(capsys, batch, f"{folder / 'r.csv'}:1:", "other columns")
    assert not (folder / "w.npz").exists()  # no epoch was trained and persisted
    assert (folder / "r.csv").read_bytes() == before


def test_a_network_too_large_for_the_memory_is_refused_with_both_numbers(folder, capsys):
    (folder / "net.txt").write_text("Identity, 3\nELU, 1000000000000\nSoftMax, 2\n")  # 32 TB of weights
    batch = write_batch(folder, "PersistenceFile: w.npz\nTrain: 1\n")
    assert_refused(capsys, batch, f"{batch}:5:", "the run needs about", "GiB of memory", "is available")
    assert not (folder / "w.npz").exists()


def test_check_prints_the_memory_estimate_and_what_is_available(folder, capsys):
    batch = write_batch(folder, "Parallel: 2\nTrain: 1\n")
    status, out, err = cli(capsys, "check", batch)
    assert status == 0, err
    words = " ".join(out.split())  # as one line, however the console wraps it
    assert words.count("memory: about") == 1
    line = words[words.index("memory: about") :]
    assert "needed" in line and "available" in line and "runtime" in line


def test_check_takes_runs_overrides(folder, capsys):
    batch = write_batch(folder, "Train: 1\n")
    status, _, err = cli(capsys, "check", batch, "--set", "Seed=18446744073709551616")
    assert status == 2 and "--set" in err and "Seed" in err


def test_ray_with_modern_semantics_is_refused_only_without_ray(folder, capsys):
    import importlib.util

    batch = write_batch(folder, "Semantics: Modern\nExecutor: ray\nTrain: 1\n")
    if importlib.util.find_spec("ray") is None:
        assert_refused(capsys, batch, f"{batch}:6:", "not installed")
        return
    status, _, err = cli(capsys, "check", batch)
    assert status == 0, err


# --- bounded reads ---------------------------------------------------------------------


@pytest.mark.parametrize("file", ["net.txt", "b.txt"])
def test_a_batch_or_network_file_of_megabytes_is_refused_with_its_size(folder, capsys, file):
    batch = write_batch(folder, "Train: 1\n")
    os.truncate(folder / file, 5 * 2**20)  # sparse: five MiB of NUL
    assert_refused(capsys, batch, str(folder / file), "too large: 5,242,880 bytes")


# --- the memory estimate ----------------------------------------------------------------


@pytest.mark.parametrize("semantics", ["Thesis", "Modern"])
def test_the_estimate_of_shared_memory_is_what_the_runner_puts_in_its_arena(folder, semantics):
    import anyio
    import numpy as np

    from actors.batchfile.parse import load_batch
    from actors.batchfile.preflight import preflight
    from actors.console import Screen
    from actors.records.journal import Journal
    from actors.runner import Runner

    optimizer = "Optimizer: Adam\n" if semantics == "Modern" else ""
    batch = load_batch(write_batch(folder, f"Semantics: {semantics}\n{optimizer}Parallel: 3\nTrain: 1\n"))
    with Runner(Journal(None), Screen(quiet=True)) as runner:
        anyio.run(runner.run, batch)
        folder = runner.workspace.arena.folder
        arena = sum(np.load(path, mmap_mode="r").nbytes for path in folder.glob("*.npy"))
    # 4 lines of 3 inputs (uint8), their class and order (int64); 2·3 + 2 = 8 weights, and
    # main, a replica and a start per worker, the round's snapshot; Adam: m and v per worker, steps.
    data = 4 * 3 + 4 * 8 + 4 * 8
    networks = (1 + 3 + 1 + 3) * 8 * 8
    adam = 3 * (2 * 8 + 1) * 8 if semantics == "Modern" else 0
    assert arena == data + networks + adam
    assert preflight(batch).need.shared == arena


def test_the_largest_seed_a_persistence_file_keeps_is_accepted(folder, capsys):
    batch = write_batch(folder, "PersistenceFile: w.npz\nSeed: 9223372036854775807\nTrain: 1\n")
    status, _, err = cli(capsys, "run", batch)
    assert status == 0, err
    assert load_persistence(folder / "w.npz").shuffle_seed == 2**63 - 1


def test_a_special_file_in_place_of_a_lock_file_is_refused_and_left_as_it_was(folder, capsys):
    make_fifo(folder / "r.csv.lock")
    batch = write_batch(folder, "ResultFile: r.csv\nTrain: 1\n")
    assert_refused(capsys, batch, "lock file", f"{folder / 'r.csv.lock'} is a FIFO, not a regular file")
    assert (folder / "r.csv.lock").is_fifo()


def test_a_ray_head_where_nothing_answers_is_refused_by_check_as_by_run(folder, capsys):
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        pytest.skip("without Ray the pass is refused for that first")
    with socket.socket() as probe:  # a port nothing listens on once it is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    batch = write_batch(folder, f"Executor: ray\nRayAddress: 127.0.0.1:{port}\nTrain: 1\n")
    assert_refused(capsys, batch, f"{batch}:6: nothing answers at the Ray head 127.0.0.1:{port}")
