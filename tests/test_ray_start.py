"""The README's two-machine recipe, run on this machine: a head and a second node by ``ray start``,
the batch on them with ``RayAddress: auto``, then both stopped.

The commands are read from the README's section "The thesis batch on two machines" and
changed only where one machine plays two: the head's address is 127.0.0.1 and its ports
are free ones; each "machine" has its own home folder, so its own ``~/.ray/auth_token``,
copied from the head's as the README says; each node has one CPU, a small object store
and a custom resource naming it; Ray's temporary folder (``RAY_TMPDIR``, where ``auto``
finds the cluster) is the test's own, apart from other Ray instances on this machine;
and the batch is a small one.  ``ray stop`` would stop every Ray instance on the machine,
so the test stops the cluster's processes by PID, and checks that none is left.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("ray")

from actor_helpers import REPO, cmdline, ray_processes, running, thesis_folder, wait_until

from actors.records.results import read_results

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)"),
]

SECTION = "### The thesis batch on two machines"
COMMAND_SECONDS = 180  # a `ray start` on a loaded machine takes 10–20 s
GONE_WITHIN = 30.0


def readme_blocks() -> list[list[str]]:
    """The indented command blocks of the README's two-machine section, in order."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n## ")]
    blocks: list[list[str]] = [[]]
    for line in section.splitlines():
        if line.startswith("    "):
            blocks[-1].append(line.strip())
        elif blocks[-1]:
            blocks.append([])
    return [block for block in blocks if block]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Machine:
    """One of the README's machines, played by a home folder and the environment of its shell."""

    def __init__(self, home: Path, ray_folder: Path) -> None:
        home.mkdir()
        self.home = home
        self.env = {
            **os.environ, "HOME": str(home), "RAY_TMPDIR": str(ray_folder), "RAY_USAGE_STATS_ENABLED": "0",
        }  # fmt: skip

    def run(self, line: str, changes: dict[str, str], extra: list[str]) -> subprocess.CompletedProcess:
        """The README's ``line`` with ``changes`` made and ``extra`` arguments: an ``export`` sets
        a variable for this machine's later commands, anything else runs here."""
        for old, new in changes.items():
            line = line.replace(old, new)
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            self.env[name] = value
            return subprocess.CompletedProcess(line, 0, "", "")
        words = shlex.split(line) + extra
        program = {"ray": str(Path(sys.executable).with_name("ray")), "python": sys.executable}
        words[0] = program.get(words[0], words[0])
        return subprocess.run(
            words, env=self.env, cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=COMMAND_SECONDS,
        )  # fmt: skip


def _stop(pids: set[int]) -> None:
    """SIGTERM, then SIGKILL what is left after a few seconds."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            if running(pid):
                os.kill(pid, signum)
        if wait_until(lambda: not any(map(running, pids)), 5.0):
            return


def test_the_readmes_two_machine_commands_run_the_batch_on_two_nodes_and_both_stop(mnist_dir, tmp_path):
    head_block, node_block, run_block = readme_blocks()
    ray_folder = Path(tempfile.mkdtemp(prefix="ray-start-", dir="/tmp"))  # short: sockets live below
    head, other = Machine(tmp_path / "head", ray_folder), Machine(tmp_path / "other", ray_folder)
    port = _free_port()
    address = {"10.0.0.1": "127.0.0.1", "6379": str(port)}
    store = "--object-store-memory=80000000"
    (tmp_path / "work").mkdir()
    folder = thesis_folder(mnist_dir, tmp_path / "work", 2000, 500)
    batch = folder / "batch.txt"
    batch.write_text(
        "NetworkFile: net.txt\nTrainFile: train.csv\nTestFile: test.csv\nLearningRate: 0.8\nLambda: 1e-7\n"
        "MinWeight: -0.1\nMaxWeight: 0.1\nResultFile: results.csv\nTrain: 1\nTest: 1\n"
    )
    seen: set[int] = set()
    try:
        for line in head_block:
            extra = []
            if line.startswith("ray start"):
                ports = ("dashboard-port", "ray-client-server-port", "dashboard-agent-listen-port")
                extra = ['--resources={"node0": 1}', store, *(f"--{name}={_free_port()}" for name in ports)]
            done = head.run(line, {**address, "--num-cpus=2": "--num-cpus=1"}, extra)
            assert done.returncode == 0, (line, done.stderr[-2000:])
        (other.home / ".ray").mkdir()
        shutil.copy(head.home / ".ray" / "auth_token", other.home / ".ray" / "auth_token")
        for line in node_block:
            extra = ['--resources={"node1": 1}', store, f"--dashboard-agent-listen-port={_free_port()}"]
            done = other.run(line, {**address, "--num-cpus=2": "--num-cpus=1"}, extra)
            assert done.returncode == 0, (line, done.stderr[-2000:])
        seen |= ray_processes(str(ray_folder))
        raylets = [pid for pid in seen if cmdline(pid).split(" ")[0].endswith("/raylet")]
        (line,) = run_block
        changes = {"batch/default.txt": str(batch), "Parallel=4": "Parallel=2", "=2000": "=200"}
        done = head.run(line, changes, ["--quiet", "--log-dir", str(folder / "logs")])
        seen |= ray_processes(str(ray_folder))
        assert done.returncode == 0, done.stderr[-2000:]
    finally:
        seen |= ray_processes(str(ray_folder))
        _stop(seen)
        shutil.rmtree(ray_folder, ignore_errors=True)
    assert len(raylets) == 2  # the head's and the second node's
    assert wait_until(lambda: not any(map(running, seen)), GONE_WITHIN), [
        cmdline(pid) for pid in seen if running(pid)
    ]
    (log,) = (folder / "logs").glob("*.jsonl")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    (placement,) = [record for record in records if record["event"] == "ray_placement"]
    assert placement["placement"] == "spread" and placement["nodes"] == 2
    assert {entry["worker"] for entry in placement["workers"]} == {0, 1}
    rows = read_results(folder / "results.csv")
    assert [(row["Mode"], row["Executor"], row["Parallel"]) for row in rows] == [
        ("train", "ray", 2),
        ("test", "ray", 2),
    ]
