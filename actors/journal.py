"""Structured JSON logs: one JSON object per line, one file per run under ``logs/``.

Every record has ``event``, ``timestamp`` (ISO 8601, UTC), ``level`` and ``run``
(the run's id, also the file's name).  The events and their fields are listed in
the README so that ``jq`` one-liners work on them.
"""

from __future__ import annotations

import math
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import structlog

from brain.atomic import output_problem
from brain.errors import UserError

LOG_FOLDER = "--log-dir naming a folder this run may write to, or --no-log"


class Journal:
    """A run's log file; ``event(name, **fields)`` writes one line, flushed.

    Closing is idempotent.  A journal opened with ``folder=None`` writes nothing.  A
    folder that cannot hold the file (not a folder, not writable) is a ``UserError``.
    """

    def __init__(self, folder: str | Path | None) -> None:
        self.run_id = datetime.now(UTC).strftime("run-%Y%m%dT%H%M%S") + f"-{os.getpid()}"
        self.path: Path | None = None
        self._file: TextIO | None = None
        if folder is None:
            self._log = structlog.wrap_logger(None, processors=[_drop])
            return
        folder = Path(folder)
        self.path = folder / f"{self.run_id}.jsonl"
        problem = output_problem(self.path)
        if problem is not None:
            raise UserError(f"log file {problem}", where=self.path, allowed=LOG_FOLDER)
        folder.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        self._log = structlog.wrap_logger(
            structlog.WriteLogger(self._file),
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.dict_tracebacks,
                _finite,
                structlog.processors.JSONRenderer(default=_plain),
            ],
            context_class=dict,
        ).bind(run=self.run_id)

    @property
    def enabled(self) -> bool:
        """Whether events are written: a caller may skip building a costly one when not."""
        return self._file is not None

    def event(self, name: str, **fields: Any) -> None:
        self._log.info(name, **fields)

    def error(self, name: str, **fields: Any) -> None:
        self._log.error(name, **fields)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


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


def _finite(logger: Any, method: str, event: dict) -> dict:
    """Strict JSON has no Infinity or NaN: write them as strings ("inf" is an unbounded capacity)."""
    return {key: _finite_value(value) for key, value in event.items()}


def _finite_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _finite_value(inner) for key, inner in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_value(inner) for inner in value]
    return value


def _drop(logger: Any, method: str, event: dict) -> dict:
    raise structlog.DropEvent
