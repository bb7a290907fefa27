"""Run locks: a second run refuses a file in use, a finished or dead run blocks nobody."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from actors.batchfile.parse import parse_batch
from actors.console import Screen
from actors.records.journal import Journal
from actors.records.lock import RunLocks, files_to_lock, lock_path
from actors.runner import Runner
from brain.errors import UserError

REPO = Path(__file__).resolve().parent.parent

# Another process: locks the files named on its command line, says so, holds them
# until its stdin closes (or it is killed).
_HOLDER = textwrap.dedent(
    """
    import sys
    from actors.records.lock import RunLocks
    with RunLocks() as locks:
        locks.acquire(sys.argv[1:])
        print("locked", flush=True)
        sys.stdin.read()
    """
)


@contextlib.contextmanager
def other_run(*paths: Path) -> Iterator[subprocess.Popen]:
    """A second process holding the locks of ``paths`` while the block runs."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, *map(str, paths)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True,
    )  # fmt: skip
    try:
        assert process.stdout.readline() == "locked\n"
        yield process
    finally:
        process.stdin.close()
        process.wait(timeout=30)


def can_lock(path: Path) -> bool:
    try:
        with RunLocks() as locks:
            locks.acquire([path])
    except UserError:
        return False
    return True


def test_second_run_is_refused_naming_the_holders_pid(tmp_path):
    results = tmp_path / "results.csv"
    with other_run(results) as holder, pytest.raises(UserError) as refused:
        RunLocks().acquire([results])
    message = str(refused.value)
    assert message.startswith(f"{results}: in use by another run (pid {holder.pid}, started ")
    assert message.endswith("); wait for it or choose another file")


def test_lock_is_free_again_when_the_holder_releases(tmp_path):
    store = tmp_path / "w.npz"
    with other_run(store):
        assert not can_lock(store)
    assert can_lock(store)
    assert not lock_path(store).exists()


def test_lock_of_a_killed_run_does_not_block(tmp_path):
    store = tmp_path / "w.npz"
    with other_run(store) as holder:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        # The dead run's sidecar is still there, naming it; only its flock is gone.
        assert f"pid {holder.pid}\n" in lock_path(store).read_text()
        with RunLocks() as locks:
            locks.acquire([store])
            assert f"pid {os.getpid()}\n" in lock_path(store).read_text()


def test_two_lockers_in_one_process_exclude_each_other(tmp_path):
    with RunLocks() as first:
        first.acquire([tmp_path / "r.csv"])
        with pytest.raises(UserError, match=f"pid {os.getpid()}"):
            RunLocks().acquire([tmp_path / "r.csv"])


def test_a_refused_acquire_gives_back_the_locks_it_took(tmp_path):
    free, busy = tmp_path / "free.npz", tmp_path / "busy.csv"
    with other_run(busy), pytest.raises(UserError):
        RunLocks().acquire([free, busy])
    assert can_lock(free)


def test_one_lock_serves_every_spelling_of_a_file(tmp_path, monkeypatch):
    real = tmp_path / "data" / "w.npz"
    real.parent.mkdir()
    (tmp_path / "link").symlink_to(real.parent)
    monkeypatch.chdir(tmp_path)
    spellings = [real, Path("data/w.npz"), tmp_path / "link" / "w.npz"]
    assert {lock_path(p) for p in spellings} == {real.with_name("w.npz.lock")}
    with RunLocks() as locks:
        locks.acquire([real])
        assert not can_lock(tmp_path / "link" / "w.npz")


def test_a_lock_file_that_cannot_be_created_is_a_user_error(tmp_path):
    not_a_folder = tmp_path / "plain-file"
    not_a_folder.write_text("")
    with pytest.raises(UserError, match="cannot create the lock file"):
        RunLocks().acquire([not_a_folder / "w.npz"])


# --- the runner ------------------------------------------------------------------

NETWORK = "Identity, 2\nSoftMax, 2\n"
DATA = "0,1,2\n1,3,4\n0,5,6\n1,7,8\n"


def tiny_batch(folder: Path, tail: str = "Train: 1\n"):
    (folder / "net.txt").write_text(NETWORK)
    (folder / "train.csv").write_text(DATA)
    text = (
        "NetworkFile: net.txt\nTrainFile: train.csv\nExecutor: inline\nParallel: 1\nWorkerBatch: 2\n"
        "PersistenceFile: w.npz\nResultFile: results.csv\n" + tail
    )
    return parse_batch(text, folder / "b.batch")


def test_batch_locks_each_persistence_and_result_file_once(tmp_path):
    batch = tiny_batch(tmp_path, "Train: 1\nTestFile: train.csv\nTest: 1\nResultFile: other.csv\nTest: 1\n")
    assert files_to_lock(batch) == [tmp_path / "w.npz", tmp_path / "results.csv", tmp_path / "other.csv"]


def test_runner_refuses_a_result_file_in_use_before_training(tmp_path):
    batch = tiny_batch(tmp_path)
    with other_run(tmp_path / "results.csv") as holder:
        with Runner(Journal(None), Screen(quiet=True)) as runner, pytest.raises(UserError) as refused:
            anyio.run(runner.run, batch)
        assert f"in use by another run (pid {holder.pid}" in str(refused.value)
    assert not (tmp_path / "w.npz").exists()
    assert not (tmp_path / "results.csv").exists()


def test_runner_holds_its_files_until_closed(tmp_path):
    batch = tiny_batch(tmp_path)
    with Runner(Journal(None), Screen(quiet=True)) as runner:
        anyio.run(runner.run, batch)
        assert (tmp_path / "w.npz").exists()
        assert not can_lock(tmp_path / "w.npz")
        assert not can_lock(tmp_path / "results.csv")
    assert can_lock(tmp_path / "w.npz")
    assert can_lock(tmp_path / "results.csv")

