"""``actors.proc``: a process' ``stat`` record read past a command name that holds spaces and parentheses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from actors.proc import children_by_parent, stat_fields


def test_stat_fields_start_after_a_name_with_spaces_and_parentheses(tmp_path: Path) -> None:
    odd = tmp_path / "a (b) c"
    shutil.copy(sys.executable, odd)  # the kernel names the process after its executable's file
    child = subprocess.Popen([str(odd), "-c", "import time; time.sleep(30)"])
    try:
        fields = stat_fields(child.pid)
        assert fields is not None and fields[0] in "RSD" and int(fields[1]) == os.getpid()
        assert int(fields[19]) >= int(stat_fields("self")[19])  # started after this process
        assert child.pid in children_by_parent()[os.getpid()]
    finally:
        child.kill()
        child.wait()
    assert stat_fields(child.pid) is None  # reaped: gone
