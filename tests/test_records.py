"""A pass' records agree through SIGKILL and a full disk: every persisted epoch has exactly its row.

The kill test runs the CLI's ``run`` on a tiny data set, each run in a process of its
own (forked from one that imported the CLI once) that is SIGKILLed just before its
k-th chmod, fsync, rename or unlink of a file in the output folder -- every step of
the write sequence of every epoch, and of the clean-up the next run does -- or after
a random delay; a last ``python -m actors run`` recovers.  The full-disk tests mount
a tiny tmpfs (as root; skipped otherwise); the unit tests inject ``ENOSPC``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import structlog

from actors.records.journal import Journal
from actors.records.lock import RunLocks
from actors.records.results import COLUMNS, HEADER, ResultRow, append_result
from actors.records.write_order import recover, write_records
from brain.atomic import Staged, atomic_write, temp_files
from brain.data import Dataset, write_csv
from brain.errors import UserError
from brain.layout import Layout
from brain.persistence import Persisted, load_persistence, save_persistence, stage_persistence

REPO = Path(__file__).resolve().parent.parent
NETWORK = "Identity, 4\nLogistic, 5\nLogistic, 3\n"
LAYOUT = Layout.of(("Identity", 4), ("Logistic", 5), ("Logistic", 3))
EPOCHS_PER_RUN = 3
# Per epoch, in the output folder: the persistence's temp file (chmod, fsync), the
# table's (chmod, fsync, rename, folder fsync), the persistence's rename and folder
# fsync: 8 calls.  Kill points 1 … 26 cover three epochs and the run's end.
KILL_POINTS = range(1, 8 * EPOCHS_PER_RUN + 3)
ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

# A process that has imported the CLI once and forks one run per request, so that a
# kill costs a run, not an interpreter start (~2 s of imports).  Request (a line on
# stdin): "BATCH at K" -- the run SIGKILLs itself just before its K-th chmod, fsync,
# rename or unlink of a file in the batch's folder, i.e. before each step of the
# write sequence in turn; "BATCH after SECONDS" -- it is SIGKILLed from outside after
# that delay.  Answer (a line on stdout): the run's exit status, "killed" for SIGKILL.
# The run's own output goes to BATCH.out.
_FORKING_RUNNER = textwrap.dedent(
    """
    import os, signal, sys, time
    from actors.cli import main
    from actors.executors.step import warm_up

    warm_up()  # the kernels, compiled or loaded once, inherited by every run

    def kill_before(folder, kill_at):
        folder = os.path.join(folder, "")
        calls = 0

        def name(target):
            if isinstance(target, int):
                try:
                    return os.readlink(f"/proc/self/fd/{target}") + os.sep
                except OSError:
                    return ""
            return os.path.abspath(target)

        def counted(function):
            def call(target, *args, **kwargs):
                nonlocal calls
                if name(target).startswith(folder):
                    calls += 1
                    if calls == kill_at:
                        os.kill(os.getpid(), signal.SIGKILL)
                return function(target, *args, **kwargs)
            return call

        for function in ("chmod", "fsync", "replace", "unlink"):
            setattr(os, function, counted(getattr(os, function)))

    for request in sys.stdin:
        batch, how, value = request.split()
        pid = os.fork()
        if pid == 0:
            output = os.open(batch + ".out", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(output, 1)
            os.dup2(output, 2)
            if how == "at":
                kill_before(os.path.dirname(batch), int(value))
            code = 1
            try:
                code = main(["run", batch, "--quiet", "--no-log"])
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        if how == "after":
            time.sleep(float(value))
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        print("killed" if killed else os.waitstatus_to_exitcode(status), flush=True)
    """
)


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory) -> Path:
    """100 lines of a 3-class problem with 4 inputs: an epoch takes milliseconds."""
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, 100)
    inputs = rng.uniform(0, 1, (100, 4)) + labels[:, None] * np.array([0.5, -0.5, 0.0, 0.25])
    path = tmp_path_factory.mktemp("tiny") / "train.csv"
    write_csv(Dataset(inputs=inputs, targets=labels[:, None].astype(np.float64), source="tiny"), path)
    return path


def write_batch(folder: Path, data: Path, epochs: int = EPOCHS_PER_RUN) -> Path:
    """A batch training ``epochs`` epochs, its persistence and results in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "net.txt").write_text(NETWORK)
    batch = folder / "batch.txt"
    batch.write_text(
        f"NetworkFile: net.txt\nTrainFile: {data}\nTestFile: {data}\nPersistenceFile: w.npz\n"
        "ResultFile: r.csv\nExecutor: inline\nParallel: 1\nWorkerBatch: 10\nLearningRate: 0.1\n"
        f"Lambda: 0\nTrain: {epochs}\n"
    )
    return batch


def run(batch: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "actors", "run", str(batch), "--quiet", *options],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def train_epochs(table: Path) -> list[int]:
    """The Epoch column of the table's training rows, in order."""
    if not table.exists():
        return []
    lines = table.read_text().splitlines()
    assert lines[0] == HEADER
    cells = [line.split(";") for line in lines[1:]]
    return [int(row[COLUMNS.index("Epoch")]) for row in cells if row[0].lower() == "train"]


def ours(folder: Path) -> list[str]:
    """Temp files and lock sidecars of the outputs, independently of the code under test."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".tmp", ".lock")))


def assert_records_agree(folder: Path, pending_allowed: bool) -> tuple[int, bool]:
    """Every persisted epoch has exactly its row; returns the persisted epoch and
    whether a save waits to be put in place.

    With ``pending_allowed`` (right after a kill) one more row may be there when a
    complete temp file holding exactly that epoch and row waits beside the
    persistence file -- what the next run puts in place.
    """
    persisted = load_persistence(folder / "w.npz").epoch if (folder / "w.npz").exists() else 0
    epochs = train_epochs(folder / "r.csv")
    if epochs == list(range(1, persisted + 1)):
        return persisted, False
    assert pending_allowed, f"persisted epoch {persisted}, rows of epochs {epochs}"
    assert epochs == list(range(1, persisted + 2)), f"persisted epoch {persisted}, rows of epochs {epochs}"
    last_row = (folder / "r.csv").read_text().splitlines()[-1]
    waiting = []
    for temp in folder.glob(".w.npz.*.tmp"):
        with contextlib.suppress(UserError):
            waiting.append(load_persistence(temp))
    assert [(p.epoch, p.result_row) for p in waiting] == [(persisted + 1, last_row)]
    return persisted, True


@pytest.fixture(scope="module")
def forking_runner() -> Iterator[subprocess.Popen]:
    process = subprocess.Popen(
        [sys.executable, "-c", _FORKING_RUNNER],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    yield process
    process.stdin.close()
    process.wait(timeout=60)


def run_forked(runner: subprocess.Popen, batch: Path, how: str, value: float) -> str:
    """One run of ``batch`` killed as ``how`` says; its exit status or "killed"."""
    runner.stdin.write(f"{batch} {how} {value}\n")
    runner.stdin.flush()
    answer = runner.stdout.readline().strip()
    assert answer, "the forking runner died"
    output = Path(f"{batch}.out").read_text()
    assert "Traceback" not in output, output
    return answer


@pytest.mark.slow  # 25-45 s: 40 runs killed
def test_sigkill_at_every_step_of_the_write_sequence_leaves_records_that_agree(
    tmp_path, tiny_csv, forking_runner
):
    batch = write_batch(tmp_path / "out", tiny_csv)
    folder = batch.parent
    # Each run recovers what the one before left; the checks after its own kill show
    # that it did (a temp file not put in place would leave a row without its epoch).
    assert run_forked(forking_runner, batch, "at", 0) == "0"  # a whole run, which compiles what it needs
    began = time.perf_counter()
    assert run_forked(forking_runner, batch, "at", 0) == "0"  # and another, to time one
    delays = np.random.default_rng(13).uniform(0.0, time.perf_counter() - began, 14)
    kills = [("at", k) for k in KILL_POINTS] + [("after", round(d, 3)) for d in delays]
    killed = pending = 0
    for how, value in kills:
        answer = run_forked(forking_runner, batch, how, value)
        assert answer in ("killed", "0"), (how, value, answer)
        killed += answer == "killed"
        pending += assert_records_agree(folder, pending_allowed=True)[1]
        assert len(list(folder.glob(".*.tmp"))) <= 2, (how, value)  # what the last kill left, no more
    assert killed >= 30
    assert pending >= 3  # killed between the row and the rename: the next run rolled it forward
    done = run(batch, "--no-log")  # the next run, a whole new process, recovers
    assert done.returncode == 0, done.stderr
    epochs, _ = assert_records_agree(folder, pending_allowed=False)
    assert epochs >= EPOCHS_PER_RUN
    assert ours(folder) == []


# --- The sequence and the recovery, step by step -------------------------------------


def network(epoch: int) -> Persisted:
    weights = np.random.default_rng(epoch).uniform(-0.1, 0.1, LAYOUT.n_weights)
    return Persisted(LAYOUT, weights, epoch=epoch, total_lines=100 * epoch)


def row(epoch: int) -> ResultRow:
    return ResultRow(
        mode="train", cpus=2, parallel=1, worker_batch=10, learning_rate=0.1, worker_setup_time=0.5,
        epoch_elapsed_time=0.01, epoch_lines=100, total_elapsed_time=0.01 * epoch,
        total_lines=100 * epoch, semantics="thesis", executor="inline", data_capacity=1,
        output_capacity=1, epoch=epoch, seed=42,
    )  # fmt: skip


def recover_as_the_next_run(folder: Path) -> list[str]:
    """What a run does first: lock its outputs, then recover them."""
    outputs = [folder / "w.npz", folder / "r.csv"]
    with RunLocks() as locks:
        locks.acquire(outputs)
        return recover(outputs)


def test_the_persistence_carries_its_row_and_the_row_lands_before_the_rename(tmp_path, monkeypatch):
    store, table = tmp_path / "w.npz", tmp_path / "r.csv"
    seen = []

    def replace_and_look(source, target):
        seen.append((Path(target).name, train_epochs(table)))
        os_replace(source, target)

    os_replace = os.replace
    monkeypatch.setattr(os, "replace", replace_and_look)
    first = row(1)  # its Timestamp is the second it was made: made once
    written = write_records(store, network(1), table, first)
    assert seen == [("r.csv", []), ("w.npz", [1])]  # the table first, then the persistence
    back = load_persistence(store)
    assert (back.result_file, back.result_row) == (str(table), table.read_text().splitlines()[-1])
    assert (written.result_file, written.result_row) == (back.result_file, back.result_row)
    with np.load(store, allow_pickle=False) as npz:  # readable with numpy alone
        assert str(npz["result_row"]) == first.line()


def test_a_save_killed_after_its_row_is_put_in_place_by_the_next_run(tmp_path, monkeypatch):
    store, table = tmp_path / "w.npz", tmp_path / "r.csv"
    write_records(store, network(1), table, row(1))

    commit = Staged.commit

    def killed_before_the_rename(self):  # of the persistence; nothing cleans up after it
        if self.path == store:
            raise KeyboardInterrupt
        commit(self)

    monkeypatch.setattr(Staged, "commit", killed_before_the_rename)
    with pytest.raises(KeyboardInterrupt):
        write_records(store, network(2), table, row(2))
    monkeypatch.undo()
    assert (load_persistence(store).epoch, train_epochs(table)) == (1, [1, 2])

    (finished,) = recover_as_the_next_run(tmp_path)
    assert finished.startswith(f"{store}: put in place")
    assert load_persistence(store).epoch == 2
    assert np.array_equal(load_persistence(store).weights, network(2).weights)
    assert train_epochs(table) == [1, 2]
    assert ours(tmp_path) == []


def test_temp_files_a_kill_left_before_the_row_are_removed_by_the_next_run(tmp_path):
    store, table = tmp_path / "w.npz", tmp_path / "r.csv"
    write_records(store, network(1), table, row(1))
    before = store.read_bytes(), table.read_bytes()
    # Killed after the new persistence was staged, before its row: a complete temp file.
    stage_persistence(store, replace(network(2), result_file=str(table), result_row=row(2).line()))
    # An older kill, half-way through a save; and one during the table's rewrite.
    (tmp_path / ".w.npz.half0001.tmp").write_bytes(before[0][: len(before[0]) // 2])
    (tmp_path / ".r.csv.half0002.tmp").write_bytes(before[1] + b"Train;2")
    others = tmp_path / ".w.npz.x.abcd1234.tmp"  # a temp file of w.npz.x, not of ours
    others.write_bytes(b"")
    assert len(temp_files(store)) == 2 and len(temp_files(table)) == 1

    assert recover_as_the_next_run(tmp_path) == []
    assert (store.read_bytes(), table.read_bytes()) == before
    assert ours(tmp_path) == [others.name]


def test_a_table_with_other_columns_leaves_the_persistence_as_it_was(tmp_path):
    store, table = tmp_path / "w.npz", tmp_path / "r.csv"
    save_persistence(store, network(1))
    table.write_text("Mode;Something else\n")
    before = store.read_bytes()
    with pytest.raises(UserError, match="other columns"):
        write_records(store, network(2), table, row(2))
    assert store.read_bytes() == before  # the epoch is not persisted without its row
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv", "w.npz"]


# --- A full disk and other OS errors --------------------------------------------------


def failing_at(calls: int, failure: OSError = ENOSPC):
    """A stand-in for an os function that fails on its ``calls``-th call."""

    def install(monkeypatch, name: str) -> None:
        real = getattr(os, name)
        count = 0

        def call(*args, **kwargs):
            nonlocal count
            count += 1
            if count == calls:
                raise failure
            return real(*args, **kwargs)

        monkeypatch.setattr(os, name, call)

    return install


def write_both(folder: Path) -> None:
    write_records(folder / "w.npz", network(2), folder / "r.csv", row(2))


WRITERS = {
    "atomic_write": (lambda folder: atomic_write(folder / "w.npz", lambda h: h.write(b"new")), "w.npz"),
    "save_persistence": (lambda folder: save_persistence(folder / "w.npz", network(2)), "w.npz"),
    "append_result": (lambda folder: append_result(folder / "r.csv", row(2)), "r.csv"),
    "write_records": (write_both, None),
}


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_full_disk_is_one_error_naming_the_file_and_leaves_the_old_files(
    tmp_path, monkeypatch, writer, failing
):
    write_records(tmp_path / "w.npz", network(1), tmp_path / "r.csv", row(1))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    write, name = WRITERS[writer]
    failing_at(1)(monkeypatch, failing)
    with pytest.raises(UserError) as caught:
        write(tmp_path)
    monkeypatch.undo()
    # The table is written before the persistence is renamed, so with both it is the
    # table's write that meets the full disk first -- unless the persistence's own fsync does.
    name = name or ("w.npz" if failing == "fsync" else "r.csv")
    assert str(caught.value) == f"{tmp_path / name}: cannot write: No space left on device"
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no temp file either


def test_a_write_that_fails_half_way_leaves_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "w.npz"
    path.write_bytes(b"old")

    def half(handle):
        handle.write(b"ne")
        raise ENOSPC

    with pytest.raises(UserError, match=r"w\.npz: cannot write: No space left on device$"):
        atomic_write(path, half)
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"] and path.read_bytes() == b"old"


def test_a_rename_that_fails_after_the_row_is_finished_by_the_next_run(tmp_path, monkeypatch):
    store, table = tmp_path / "w.npz", tmp_path / "r.csv"
    write_records(store, network(1), table, row(1))
    failing_at(2, OSError(errno.EIO, os.strerror(errno.EIO)))(monkeypatch, "replace")  # the table's passes
    with pytest.raises(UserError, match=r"w\.npz: cannot write: Input/output error$"):
        write_records(store, network(2), table, row(2))
    monkeypatch.undo()
    assert (load_persistence(store).epoch, train_epochs(table)) == (1, [1, 2])
    recover_as_the_next_run(tmp_path)
    assert (load_persistence(store).epoch, train_epochs(table)) == (2, [1, 2])
    assert ours(tmp_path) == []


@pytest.mark.parametrize("failing", ["ftruncate", "pwrite"])
def test_a_lock_file_that_cannot_be_written_is_one_error_and_is_not_left_behind(
    tmp_path, monkeypatch, failing
):
    store = tmp_path / "w.npz"
    failing_at(1)(monkeypatch, failing)
    with pytest.raises(UserError) as caught:
        RunLocks().acquire([tmp_path / "r.csv", store])  # the first lock is given back too
    monkeypatch.undo()
    assert str(caught.value) == (
        f"{tmp_path / 'r.csv'}: cannot write the lock file {tmp_path / 'r.csv.lock'}: No space left on device"
    )
    assert list(tmp_path.iterdir()) == []
    with RunLocks() as locks:
        locks.acquire([tmp_path / "r.csv", store])


def test_a_log_that_cannot_be_written_stops_with_one_warning(tmp_path, monkeypatch):
    warnings = []
    journal = Journal(tmp_path, warn=warnings.append)
    journal.event("first")

    def full(self, *args, **kwargs):
        raise ENOSPC

    monkeypatch.setattr(structlog.WriteLogger, "info", full)
    monkeypatch.setattr(structlog.WriteLogger, "error", full)
    journal.event("second")
    journal.error("third")
    journal.close()
    assert warnings == [
        f"{journal.path}: cannot write: No space left on device; nothing more is logged (the run goes on)"
    ]
    assert not journal.enabled
    assert [json.loads(line)["event"] for line in journal.path.read_text().splitlines()] == ["first"]


def test_a_log_folder_that_cannot_be_made_is_refused_before_the_run(tmp_path):
    """Decidable up front (the pre-flight's rule), so a refusal rather than a warning mid-run."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    warnings = []
    with pytest.raises(UserError, match="is a regular file, not a folder"):
        Journal(blocker / "logs", warn=warnings.append)
    assert warnings == [] and blocker.read_text() == ""


# --- A real full disk: a tiny tmpfs ----------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path) -> Iterator:
    """``mount(size)``: a fresh tmpfs of ``size`` (e.g. "64k") under ``tmp_path``."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the injected-ENOSPC tests cover the same paths")
    mounted = []

    def mount(size: str) -> Path:
        point = tmp_path / f"disk{len(mounted)}"
        point.mkdir()
        command = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", str(point)], check=True)


def fill(disk: Path, leave_pages: int) -> None:
    """Take all of ``disk`` but ``leave_pages`` pages."""
    stat = os.statvfs(disk)
    (disk / "filler").write_bytes(bytes((stat.f_bavail - leave_pages) * stat.f_bsize))
    assert os.statvfs(disk).f_bavail == leave_pages


def stderr_lines(done: subprocess.CompletedProcess) -> list[str]:
    assert "Traceback" not in done.stderr, done.stderr
    return [line for line in done.stderr.splitlines() if line.strip()]


def test_a_log_on_a_full_disk_stops_with_one_warning_and_the_run_saves_everything(
    tmp_path, tiny_csv, tiny_disk
):
    logs = tiny_disk("4k")  # one page: full within the first epoch's rounds
    batch = write_batch(tmp_path / "out", tiny_csv)
    done = run(batch, "--log-dir", str(logs))
    assert done.returncode == 0, done.stderr
    (warning,) = stderr_lines(done)
    assert warning.startswith(f"warning: {logs}/run-") and "cannot write: No space left on device" in warning
    assert assert_records_agree(batch.parent, pending_allowed=False) == (EPOCHS_PER_RUN, False)


def test_outputs_on_a_full_disk_are_one_error_and_the_old_records_stay(tmp_path, tiny_csv, tiny_disk):
    batch = write_batch(tiny_disk("256k"), tiny_csv, epochs=1)
    folder = batch.parent
    assert run(batch, "--no-log").returncode == 0
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    fill(folder, leave_pages=2)  # room for the two lock files, not for the new persistence
    done = run(batch, "--no-log")
    assert done.returncode == 2
    assert stderr_lines(done) == [f"error: {folder / 'w.npz'}: cannot write: No space left on device"]
    (folder / "filler").unlink()
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # no temp file, no lock file

    fill(folder, leave_pages=0)  # not even room for a lock file
    done = run(batch, "--no-log")
    assert done.returncode == 2
    (error,) = stderr_lines(done)
    lock = folder / "w.npz.lock"
    assert error == f"error: {folder / 'w.npz'}: cannot write the lock file {lock}: No space left on device"
    (folder / "filler").unlink()
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
