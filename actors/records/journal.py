"""Structured JSON logs: one JSON object per line, one file per run under ``logs/``.

Every record has ``event``, ``timestamp`` (ISO 8601, UTC), ``level`` and ``run``
(the run's id, also the file's name).  The events and their fields are listed in
the README so that ``jq`` one-liners work on them.

The log serves the run, never the other way round: a log that cannot be written (a
full disk, a folder we may not write) stops with one warning, and the run goes on to
save its results and checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from brain.atomic import output_problem
from brain.errors import UserError

LOG_FOLDER = "--log-dir naming a folder this run may write to, or --no-log"


def _warn_on_stderr(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr, flush=True)


class Journal:
    """A run's log file; ``event(name, **fields)`` writes one line, flushed.

    Closing is idempotent.  A journal opened with ``folder=None`` writes nothing.  A
    folder that cannot hold the file (not a folder; a device, FIFO or directory where
    the file goes) is a ``UserError``, as the pre-flight says.  When the file cannot
    be opened or written for any other reason (a full disk …), the journal calls
    ``warn`` once with a line naming the file and the system's reason and writes
    nothing more; no ``OSError`` leaves it.
    """

    def __init__(self, folder: str | Path | None, warn: Callable[[str], object] = _warn_on_stderr) -> None:
        self.run_id = datetime.now(UTC).strftime("run-%Y%m%dT%H%M%S") + f"-{os.getpid()}"
        self.path: Path | None = None
        self._file: TextIO | None = None
        self._warn = warn
        self._log: Any = None  # the structlog logger, while the file is open
        if folder is None:
            return
        self.path = Path(folder) / f"{self.run_id}.jsonl"
        problem = output_problem(self.path)
        if problem is not None:
            raise UserError(f"log file {problem}", where=self.path, allowed=LOG_FOLDER)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        except OSError as error:
            self._stop(error)
            self.path = None  # there is no log to point to
            return
        import structlog  # here: a run without a log (measure's, check's) never loads it

        self._log = structlog.wrap_logger(
            structlog.WriteLogger(self._file),
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.dict_tracebacks,
                structlog.processors.JSONRenderer(_strict_json, default=_plain),
            ],
            context_class=dict,
        ).bind(run=self.run_id)

    @property
    def enabled(self) -> bool:
        """Whether events are written: a caller may skip building a costly one when not."""
        return self._file is not None

    def event(self, name: str, **fields: Any) -> None:
        self._write("info", name, fields)

    def error(self, name: str, **fields: Any) -> None:
        self._write("error", name, fields)

    def _write(self, level: str, name: str, fields: dict[str, Any]) -> None:
        if self._file is None:
            return
        try:
            getattr(self._log, level)(name, **fields)
        except OSError as error:
            self._stop(error)

    def close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            try:
                file.close()
            except OSError as error:
                self._stop(error)

    def _stop(self, error: OSError) -> None:
        """Write nothing more, say so once."""
        self._log = None
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):  # the line that failed is still in its buffer
                file.close()
        reason = error.strerror or error
        self._warn(f"{self.path}: cannot write: {reason}; nothing more is logged (the run goes on)")


def versions() -> dict[str, str]:
    """The versions a run's results depend on."""
    import anyio
    import numba
    import numpy

    return {
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "numba": numba.__version__,
        "anyio": anyio.__version__ if hasattr(anyio, "__version__") else _dist("anyio"),
        "structlog": _dist("structlog"),
        "platform": platform.platform(),
        "cpus": str(os.cpu_count()),
    }


def _dist(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def _plain(value: Any) -> Any:
    """JSON for what json does not know: paths as strings, floats for inf, enums by name."""
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "name") and hasattr(value, "value"):
        return value.name
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _strict_json(event: dict, **options: Any) -> str:
    """Strict JSON has no Infinity or NaN: write them as strings ("inf" is an unbounded capacity).

    Most records hold neither: they are serialised once, and only the others are walked.
    """
    try:
        return json.dumps(event, allow_nan=False, **options)
    except ValueError:
        return json.dumps(_finite_value(event), **options)


def _finite_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _finite_value(inner) for key, inner in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_value(inner) for inner in value]
    return value
