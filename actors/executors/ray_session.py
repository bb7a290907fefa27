"""The Ray instance a run uses: a cluster it connects to, or a private one that ends with the run.

``RayAddress: local`` starts a private instance with ``ray.init``.  Ray ties the head
processes it starts (GCS, raylet, dashboard head, monitors) to the driver, so they die
with it; not the two agents the raylet starts (``ray::DashboardAgent``,
``ray::RuntimeEnvAgent``, about 200 MB): after a driver killed with SIGKILL they spend a
minute trying to report the raylet's death to the dead GCS before they exit, and the
named semaphores of the raylet's shared-memory channels (``/dev/shm/sem.hdr<pid>-…``,
``sem.obj<pid>-…``) are never removed.  So a run records its instance — every process
Ray started for it, with its start time, so that a recycled pid is never taken for
it — in ``<temp dir>/goconcurrent-ray-<pid>-….json``, and a small watchdog process
(``python -m actors.executors.ray_session RECORD``, in its own session so that Ctrl-C does not
reach it) waits on a pipe from the driver.  When the driver ends, however it ends, the
pipe closes and the watchdog stops what is left of the instance, removes its
semaphores and the record, within a second or two.  A run that starts a private
instance first does the same for every record whose driver is dead (its watchdog
killed too).  The dashboard is not started (``include_dashboard=False``: the head keeps
one module, no web frontend), nor are usage statistics sent (unless
``RAY_USAGE_STATS_ENABLED`` says otherwise).  Only on Linux (it reads ``/proc``).

``auto`` or ``host:port`` is first tried in a child process with Ray's output captured
and a time limit (``PROBE_SECONDS``): an address where no Ray head answers is one
line, not minutes of Ray's warnings.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from actors.proc import children_by_parent, stat_fields
from brain.errors import UserError

log = logging.getLogger(__name__)

PROBE_SECONDS = 20.0  # connecting to a head takes seconds; Ray itself would retry for minutes
STOP_SECONDS = 3.0  # how long a leftover process gets after SIGTERM before SIGKILL
WATCHDOG_SECONDS = 10.0  # how long a closing driver waits for its watchdog's clean-up
_RECORD = "goconcurrent-ray-"
_PROC = Path("/proc")
_SEMAPHORE = re.compile(r"sem\.(?:hdr|obj)(\d+)-\d+")  # PlasmaObjectHeader: "hdr"/"obj" + creator pid
QUIET = {"include_dashboard": False, "logging_level": logging.ERROR, "log_to_driver": False}
_PROBE = """\
import logging, sys
import ray
try:
    ray.init(address=sys.argv[1], logging_level=logging.ERROR, log_to_driver=False)
except Exception as error:
    while error.__cause__ is not None:  # Ray's ConnectionError hides the reason (e.g. a missing token)
        error = error.__cause__
    print(f"{type(error).__name__}: {str(error).split('. ')[0]}")
    sys.exit(1)
ray.shutdown()
"""
_RAY_LOG_LINE = re.compile(r"\[[^\]]*\] \S+:\d+: (.+)")  # Ray's C++ log: [time level pid tid] file:line: text


class Connection:
    """This process' connection to Ray, made by ``connect``.

    ``close`` disconnects; for a private instance it also waits (at most
    ``WATCHDOG_SECONDS``) until the watchdog has stopped what Ray left and removed
    the record.  Idempotent; never raises.
    """

    def __init__(self, ray: Any, instance: LocalInstance | None = None) -> None:
        self._ray = ray
        self.instance = instance

    def remember(self) -> None:
        """Record the private instance's processes again (after more were started); nothing for a cluster."""
        if self.instance is not None:
            self.instance.remember()

    def close(self) -> None:
        try:
            self._ray.shutdown()
        except Exception as error:  # Ray already gone: the watchdog still cleans up
            log.debug("ignored during Ray shutdown: %r", error)
        if self.instance is not None:
            self.instance.close()
            self.instance = None


def connect(ray: Any, address: str, workers: int) -> Connection | None:
    """Connect to Ray at ``address``; ``None`` if this process already was (left as it is).

    Raises ``UserError`` if no cluster answers there or it has fewer CPUs than workers.
    """
    if ray.is_initialized():
        connection = None
    elif address == "local":
        connection = _start_local(ray, workers)
    else:
        _check_listening(ray, address)
        _probe(address)
        try:
            ray.init(address=address, **QUIET)
        except ConnectionError as error:
            raise _no_cluster(address, str(error)) from None
        connection = Connection(ray)
    cpus = ray.cluster_resources().get("CPU", 0)
    if cpus < workers:
        if connection is not None:
            connection.close()
        raise UserError(
            f"the Ray cluster has {cpus:g} CPUs, Parallel {workers} needs one per worker",
            allowed=f"Parallel ≤ {cpus:g}, or more machines in the cluster",
        )
    return connection


def _start_local(ray: Any, workers: int) -> Connection:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not _PROC.is_dir():
        ray.init(address="local", num_cpus=workers, **QUIET)
        return Connection(ray)
    clean_abandoned()
    context = ray.init(address="local", num_cpus=workers, **QUIET)
    try:
        return Connection(ray, LocalInstance(context.address_info["session_dir"]))
    except BaseException:
        ray.shutdown()
        raise


def _no_cluster(address: str, reason: str) -> UserError:
    return UserError(
        f"no Ray cluster answers at RayAddress {address}: {reason}",
        allowed="a running cluster (ray start --head), or RayAddress: local; for a "
        "cluster with token authentication RAY_AUTH_MODE=token and the head's ~/.ray/auth_token",
    )


def _probe(address: str) -> None:
    """Connect once in a child process, with Ray's output captured and a time limit."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, address],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=PROBE_SECONDS,
        )  # fmt: skip
    except subprocess.TimeoutExpired as timeout:
        output = (timeout.stderr or b"").decode(errors="replace")  # bytes, whatever text= says
        said = [match[1] for line in output.splitlines() if (match := _RAY_LOG_LINE.match(line))]
        raise UserError(
            f"no Ray head answered at RayAddress {address} within {PROBE_SECONDS:.0f} s"
            + (f" (Ray's last word: {said[-1]})" if said else ""),
            allowed="host:port of a running Ray head (ray start --head prints it), auto, or local; for a "
            "cluster with token authentication RAY_AUTH_MODE=token and the head's ~/.ray/auth_token",
        ) from None
    if done.returncode != 0:
        lines = done.stdout.strip().splitlines() or done.stderr.strip().splitlines() or ["(no message)"]
        raise _no_cluster(address, lines[0])


def _check_listening(ray: Any, address: str, timeout: float = 5.0) -> None:
    """Raise ``UserError`` unless something listens at the head's port (a quick, clear refusal).

    ``auto`` is looked up as Ray looks it up (``RAY_ADDRESS``, else the cluster last
    started on this machine); if that fails, the probe says why.
    """
    if address == "auto":
        try:
            address = ray._private.services.canonicalize_bootstrap_address("auto") or ""
        except Exception:  # a private helper: without it, the probe's message has to do
            return
    problem = head_problem(address, timeout)
    if problem is not None:
        raise UserError(problem, allowed=HEAD_ALLOWED)


HEAD_ALLOWED = "host:port of a running Ray head (ray start --head prints it), auto, or local"


def head_problem(address: str, timeout: float = 5.0) -> str | None:
    """Why nothing can be reached at the Ray head ``address`` (``host:port``), by a TCP connection
    to it; None when something listens there, or when ``address`` is no ``host:port``."""
    host, _, port = address.rpartition(":")
    if not (host and port.isdigit()):
        return None
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as error:
        return f"nothing answers at the Ray head {address} ({error.strerror or error})"
    return None


class LocalInstance:
    """The record of a private instance and its watchdog (see the module's docstring)."""

    def __init__(self, session_dir: str) -> None:
        self.session_dir = session_dir
        fd, name = tempfile.mkstemp(prefix=f"{_RECORD}{os.getpid()}-", suffix=".json")
        os.close(fd)
        self.record = Path(name)
        self._watchdog: subprocess.Popen | None = None
        self.remember()
        self._watchdog = subprocess.Popen(
            [sys.executable, "-m", "actors.executors.ray_session", str(self.record)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, cwd=Path(__file__).resolve().parents[2],  # the project, for -m
        )  # fmt: skip
        self.remember()

    def remember(self) -> None:
        """Write the record: the driver, the watchdog, and every process of the instance now."""
        record = {
            "driver": [os.getpid(), _started(os.getpid())],
            "watchdog": None if self._watchdog is None else self._watchdog.pid,
            "session_dir": self.session_dir,
            "processes": [[pid, _started(pid)] for pid in _processes_of(self.session_dir)],
        }
        partial = self.record.with_suffix(".tmp")
        partial.write_text(json.dumps(record))
        partial.replace(self.record)

    def close(self) -> None:
        """Let the watchdog clean up (Ray was shut down) and wait for it, at most ``WATCHDOG_SECONDS``."""
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is None:
            return
        try:
            watchdog.stdin.close()
            watchdog.wait(WATCHDOG_SECONDS)
        except (OSError, subprocess.TimeoutExpired) as error:
            log.debug("the Ray watchdog did not finish: %r", error)


def clean_abandoned(folder: Path | None = None) -> list[Path]:
    """Clean up after every recorded instance whose driver is dead; the records cleaned."""
    cleaned = []
    for record in Path(folder or tempfile.gettempdir()).glob(f"{_RECORD}*.json"):
        try:
            driver = json.loads(record.read_text())["driver"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if driver[1] is not None and _started(driver[0]) != driver[1]:
            clean_up(record)
            cleaned.append(record)
    return cleaned


def clean_up(record: Path) -> None:
    """Stop the recorded processes still running, and any other process of the recorded
    session (a worker started after the record was written names the session in its command
    line), remove their semaphores, then the record."""
    try:
        content = json.loads(record.read_text())
        processes = [(int(pid), start) for pid, start in content["processes"]]
        session = Path(str(content["session_dir"])).name
    except (OSError, ValueError, KeyError, TypeError):
        processes, session = [], ""
    if session.startswith("session_"):  # Ray's names: session_<date>_<time>_<pid>, one per instance
        recorded = {pid for pid, _ in processes}
        processes += [(pid, _started(pid)) for pid in _naming(session) if pid not in recorded]
    left = [(pid, start) for pid, start in processes if start is not None and _started(pid) == start]
    _signal(left, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [(pid, start) for pid, start in left if _started(pid) == start]
    _signal(left, signal.SIGKILL)
    _remove_semaphores({pid for pid, _ in processes})
    record.unlink(missing_ok=True)


def _signal(processes: list[tuple[int, int]], signum: int) -> None:
    for pid, _ in processes:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def _remove_semaphores(pids: set[int]) -> None:
    """Remove the named semaphores made by ``pids`` — only those of pids no process has now."""
    for path in Path("/dev/shm").glob("sem.*"):
        match = _SEMAPHORE.fullmatch(path.name)
        if match and int(match[1]) in pids and _started(int(match[1])) is None:
            path.unlink(missing_ok=True)


def _started(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks after boot); ``None`` if it is gone or a zombie."""
    fields = stat_fields(pid)
    return None if fields is None or fields[0] in "ZX" else int(fields[19])


def _naming(text: str) -> list[int]:
    """The processes other than this one whose command line holds ``text``."""
    found = []
    for entry in _PROC.iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


def _processes_of(session_dir: str) -> list[int]:
    """This process' children whose command line names the session's folder (Ray's head
    processes), and all their descendants (the raylet's agents and workers)."""
    children = children_by_parent()
    found = []
    for pid in children.get(os.getpid(), []):
        with contextlib.suppress(OSError):  # ended meanwhile
            if session_dir.encode() in (_PROC / str(pid) / "cmdline").read_bytes():
                found.append(pid)
    processes, queue = set(found), list(found)
    while queue:
        for child in children.get(queue.pop(), []):
            if child not in processes:
                processes.add(child)
                queue.append(child)
    return sorted(processes)


def _watch(record: Path) -> None:
    """The watchdog: wait for the driver's pipe to close, then clean up after its instance."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.stdin.buffer.read()  # returns at end of file: the driver closed the pipe, or died
    clean_up(record)


if __name__ == "__main__":
    _watch(Path(sys.argv[1]))
