"""A private Ray instance ends with its run, even a killed one; an address without a Ray head is one line.

The runs here are real ``python -m actors run`` processes with ``Executor: ray`` on
1,000 MNIST lines, killed with SIGKILL in the middle of a pass.  What belongs to a run
is read from ``/proc`` while it runs — every process below its driver — so the checks
do not rely on the record the code under test writes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from actor_helpers import REPO, cmdline, descendants, mnist_subset, run_until_rounds, running, wait_until

from actors.executors import ray_session
from brain.data import write_csv

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")

GONE_WITHIN = (
    10.0  # seconds: the watchdog's SIGTERM grace (3 s) and its start, with room for a loaded machine
)
MID_PASS = 15  # rounds: the middle of the second pass (10 rounds a pass)
SEMAPHORE = re.compile(r"sem\.(?:hdr|obj)(\d+)-\d+")


@pytest.fixture(scope="module")
def ray_batch(mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A thesis batch on 1,000 lines with Executor ray, long enough to be killed mid-pass."""
    pytest.importorskip("ray")
    folder = tmp_path_factory.mktemp("ray-run")
    train, _ = mnist_subset(mnist_dir, 1000, 10)
    write_csv(train, folder / "train.csv")
    (folder / "net.txt").write_text("Identity, 784\nELU, 100\nSoftMax, 10\n")
    (folder / "batch.txt").write_text(
        "NetworkFile: net.txt\nTrainFile: train.csv\n"
        "LearningRate: 0.8\nLambda: 1e-7\nMinWeight: -0.1\nMaxWeight: 0.1\n"
        "Parallel: 1\nWorkerBatch: 100\nExecutor: ray\nTrain: 1000\n"
    )
    return folder / "batch.txt"


def _semaphores_of(pids: set[int]) -> list[str]:
    """Named semaphores in /dev/shm made by any of ``pids`` (Ray names them after their creator)."""
    return [
        name
        for name in os.listdir("/dev/shm")
        if (match := SEMAPHORE.fullmatch(name)) and int(match[1]) in pids
    ]


AGENTS = ("DashboardAgent", "RuntimeEnvAgent", "dashboard/agent.py", "runtime_env/agent/main.py")


def _agents(pids: set[int]) -> set[int]:
    """Ray's DashboardAgent and RuntimeEnvAgent among ``pids``, by their names once they have
    renamed themselves or by their scripts before (a worker's ``--runtime-env-agent-port`` is no agent)."""
    return {pid for pid in pids if any(name in cmdline(pid) for name in AGENTS)}


def _agent_kinds(pids: set[int]) -> set[str]:
    """Which of Ray's two agents run among ``pids`` (either may show as more than one process)."""
    kinds = {"dashboard": ("DashboardAgent", "dashboard/agent.py"),
             "runtime_env": ("RuntimeEnvAgent", "runtime_env/agent/main.py")}  # fmt: skip
    agents = _agents(pids)
    return {kind for kind, names in kinds.items() for pid in agents if any(n in cmdline(pid) for n in names)}


def _kill(process: subprocess.Popen) -> set[int]:
    """SIGKILL the run's driver; the processes that were below it."""
    below = descendants(process.pid)
    assert any("raylet" in cmdline(pid) for pid in below), "the run has no Ray instance of its own"
    process.kill()
    process.wait()
    return below


@pytest.mark.slow
def test_a_killed_runs_ray_processes_and_semaphores_are_gone_within_seconds(ray_batch, tmp_path):
    made = set()
    for attempt in range(2):
        run = run_until_rounds(ray_batch, tmp_path / f"logs{attempt}", MID_PASS, 180)
        below = _kill(run)
        made |= below
        assert _agent_kinds(below) == {"dashboard", "runtime_env"}, [cmdline(pid) for pid in below]
        assert wait_until(lambda below=below: not any(map(running, below)), GONE_WITHIN), [
            cmdline(pid) for pid in below if running(pid)
        ]
        assert _semaphores_of(below) == []
    assert _semaphores_of(made) == []  # two runs, nothing piled up


@pytest.mark.slow
def test_the_next_run_stops_what_a_killed_run_left_when_its_watchdog_died_too(ray_batch, tmp_path):
    run = run_until_rounds(ray_batch, tmp_path / "logs", MID_PASS, 180)
    (watchdog,) = [pid for pid in descendants(run.pid) if "actors.executors.ray_session" in cmdline(pid)]
    os.kill(watchdog, signal.SIGKILL)
    below = _kill(run)
    time.sleep(1.0)
    left = {pid for pid in below if running(pid)}
    assert _agents(left), "Ray's agents outlived the driver (as without the fix)"
    assert _semaphores_of(below)

    short = ray_batch.with_name("short.txt")
    short.write_text(ray_batch.read_text().replace("Train: 1000", "Train: 1"))
    done = subprocess.run(
        [sys.executable, "-m", "actors", "run", str(short), "--quiet", "--no-log"],
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not any(map(running, left)), [cmdline(pid) for pid in left if running(pid)]
    assert _semaphores_of(below) == []


def _listening_socket() -> socket.socket:
    """A TCP socket on loopback that accepts connections and never answers (not a Ray head)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    return server


def _run_with_address(batch: Path, address: str) -> tuple[subprocess.CompletedProcess, float]:
    batch = batch.with_name("remote.txt")
    batch.write_text(f"RayAddress: {address}\n" + batch.with_name("batch.txt").read_text())
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "actors", "run", str(batch), "--no-log"],
        cwd=REPO, capture_output=True, text=True, timeout=ray_session.PROBE_SECONDS + 60,
    )  # fmt: skip
    return done, time.monotonic() - began


def test_a_ray_address_where_nothing_listens_is_one_line(ray_batch):
    with _listening_socket() as server:
        address = f"127.0.0.1:{server.getsockname()[1]}"
    done, _ = _run_with_address(ray_batch, address)  # the port is closed again
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and f"nothing answers at the Ray head {address}" in done.stderr


@pytest.mark.slow
def test_a_ray_address_where_no_ray_head_answers_is_one_line_within_the_probe_time(ray_batch):
    with _listening_socket() as server:
        address = f"127.0.0.1:{server.getsockname()[1]}"
        done, seconds = _run_with_address(ray_batch, address)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"no Ray head answered at RayAddress {address} within" in done.stderr
    assert seconds < ray_session.PROBE_SECONDS + 20


# --- the record and the clean-up, on ordinary processes ------------------------------


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen(["sleep", "60"])


def _write_record(
    folder: Path, driver: tuple[int, int | None], processes: list[tuple[int, int | None]]
) -> Path:
    record = folder / f"goconcurrent-ray-{driver[0]}-test.json"
    record.write_text(
        json.dumps({"driver": driver, "processes": processes, "session_dir": "x", "watchdog": None})
    )
    return record


def _start_time(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])


def test_a_record_whose_driver_is_dead_is_cleaned_up_and_a_live_ones_is_left(tmp_path):
    driver = subprocess.Popen(["true"])
    driver_start = _start_time(driver.pid)
    driver.wait()
    left, other = _sleeper(), _sleeper()
    try:
        semaphore = Path(f"/dev/shm/sem.hdr{driver.pid}-1234")
        semaphore.touch()
        kept = Path(f"/dev/shm/sem.obj{os.getpid()}-1234")  # a live process' semaphore
        kept.touch()
        abandoned = _write_record(
            tmp_path,
            (driver.pid, driver_start),
            [(left.pid, _start_time(left.pid)), (driver.pid, driver_start)],
        )
        live = _write_record(
            tmp_path, (os.getpid(), _start_time(os.getpid())), [(other.pid, _start_time(other.pid))]
        )
        try:
            assert ray_session.clean_abandoned(tmp_path) == [abandoned]
            assert left.wait(5) == -signal.SIGTERM
            assert not abandoned.exists() and not semaphore.exists()
            assert live.exists() and other.poll() is None and kept.exists()
        finally:
            semaphore.unlink(missing_ok=True)
            kept.unlink(missing_ok=True)
    finally:
        for process in (left, other):
            process.kill()
            process.wait()


def test_a_recycled_pid_is_not_taken_for_a_recorded_process(tmp_path):
    stranger = _sleeper()
    try:
        record = _write_record(
            tmp_path, (stranger.pid + 10**7, 1), [(stranger.pid, _start_time(stranger.pid) - 1)]
        )
        ray_session.clean_up(record)
        assert stranger.poll() is None and not record.exists()
    finally:
        stranger.kill()
        stranger.wait()


def test_a_process_that_ignores_sigterm_is_killed(tmp_path):
    stubborn = subprocess.Popen(
        [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
         "print('ready', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert stubborn.stdout.readline() == "ready\n"
        record = _write_record(
            tmp_path, (stubborn.pid + 10**7, 1), [(stubborn.pid, _start_time(stubborn.pid))]
        )
        ray_session.clean_up(record)
        assert stubborn.wait(5) == -signal.SIGKILL
    finally:
        stubborn.kill()
        stubborn.wait()
