"""The command line: ``python -m actors run|check|data …``.

Errors the user can fix are printed on one line (file:line: what is wrong (allowed: …))
with exit status 2; an interrupt exits with 130; a reader that closes the output
early (``… | head -1``) ends the command quietly, with status 0.  Tracebacks are for bugs.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from actors.options import REPO, batch_options, overrides, positive, run_options
from brain.errors import UserError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(_joined(sys.argv[1:] if argv is None else argv))
    from actors.console import Screen

    screen = Screen(quiet=getattr(args, "quiet", False))
    handlers = _signal_handlers()  # a run leaves SIGINT and SIGTERM ignored (actors.interrupt.quiet_signals)
    try:
        code = args.handler(args, screen) or 0
        sys.stdout.flush()  # here, not at interpreter exit, where a closed pipe could no longer be caught
        return code
    except UserError as error:
        screen.error(str(error))
        return getattr(error, "exit_code", EXIT_USER_ERROR)
    except KeyboardInterrupt:
        screen.error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        if not _reader_gone():
            raise  # a pipe of our own broke: a bug, not the user's `| head`
        # What is still buffered for stdout goes nowhere when Python flushes it at exit
        # (https://docs.python.org/3/library/signal.html#note-on-sigpipe).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        _restore(handlers)


def _signal_handlers() -> dict[int, object]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}


def _restore(handlers: dict[int, object]) -> None:
    for signum, handler in handlers.items():
        if handler is not None:
            signal.signal(signum, handler)


def _reader_gone() -> bool:
    """Whether stdout is a pipe whose reading end has been closed (poll reports an error on it)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & select.POLLERR for _, events in poller.poll(0))


def _load_batch(args: argparse.Namespace):
    """The batch file with the overrides of the command line applied, as ``run`` and ``check`` read it."""
    from actors.batchfile.parse import load_batch

    return load_batch(args.batch, overrides(args), args.root)


def _joined(argv: Sequence[str]) -> list[str]:
    """``--run-option --flag`` as ``--run-option=--flag``: argparse would take the option-like
    value for an option of its own ("expected one argument")."""
    joined: list[str] = []
    tokens = iter(argv)
    for token in tokens:
        value = next(tokens, None) if token == "--run-option" else None
        joined.append(token if value is None else f"{token}={value}")
    return joined


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m actors",
        description="Exemplar-parallel MNIST training with asyncio actors and Go-style channels.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run a batch file")
    batch_options(run)
    run_options(run)
    run.set_defaults(handler=_run)

    check = commands.add_parser(
        "check", help="refuse now what run would refuse: files, settings, memory (takes run's options)"
    )
    batch_options(check)
    check.add_argument(
        "--resume",
        action="store_true",
        help="check what run --resume would run: the checkpoint, then the rest",
    )
    check.set_defaults(handler=_check)

    measure = commands.add_parser("measure", help="wall time and peak memory of whole runs of a batch")
    measure.add_argument("batch", type=Path, help="the batch file (run on copies of the files it writes)")
    measure.add_argument("--repeat", type=positive, default=5, help="runs (medians are reported)")
    measure.add_argument(
        "--run-option", dest="run_options", action="append", default=[], metavar="OPTION",
        help="an option passed on to `run`, e.g. --run-option --executor=thread (repeatable)",
    )  # fmt: skip
    measure.set_defaults(handler=_measure)

    data = commands.add_parser("data", help="fetch or convert MNIST")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    fetch = data_commands.add_parser("fetch", help="download the four MNIST IDX files, verified")
    fetch.add_argument("--mirror", help="a local folder or URL prefix holding the .gz files")
    fetch.add_argument("--dest", type=Path, default=REPO / "data" / "mnist", help="where to put them")
    fetch.set_defaults(handler=_fetch)
    csv = data_commands.add_parser("csv", help="convert an IDX images file (and its labels) to CSV")
    csv.add_argument("images", type=Path, help="an IDX images file (.gz or not)")
    csv.add_argument("csv", type=Path, help="the CSV file to write: label, then the pixels")
    csv.add_argument("--labels", type=Path, help="the labels file (default: by the MNIST naming)")
    csv.set_defaults(handler=_csv)

    from actors.study.cli import add_commands as add_study_commands

    add_study_commands(commands)
    return parser


def _run(args: argparse.Namespace, screen) -> int:
    from actors.setup_time import collector_paused

    with collector_paused():
        from actors.executors.executor import start_early

        batch = _load_batch(args)
        _warn(batch, screen)
        start_early(p.settings.executor for p in batch.passes)  # a pool's server starts while the rest loads

        import anyio

        from actors.records.journal import Journal
        from actors.runner import Runner

    journal = Journal(None if args.no_log else args.log_dir)
    try:
        with Runner(journal, screen, overrides(args)) as runner:
            runner.interrupt.quiet_after = True  # the process ends with the run: quiet_signals
            try:
                anyio.run(
                    runner.run, batch, args.resume, backend="asyncio", backend_options={"use_uvloop": True}
                )
            except UserError as error:
                journal.error("run_end", status="error", message=str(error), kind=type(error).__name__)
                raise
        journal.event("run_end", status="ok")
    finally:
        journal.close()
    if journal.path is not None:
        screen.line(f"log: {journal.path}", style="dim")
    return 0


def _measure(args: argparse.Namespace, screen) -> int:
    from actors.study.measure import main as measure

    measure(args.batch, args.repeat, args.run_options, report=screen.line)
    return 0


def _check(args: argparse.Namespace, screen) -> int:
    from actors.batchfile.preflight import preflight

    batch = _load_batch(args)
    if args.resume:  # as run --resume: the checkpoint first, then the passes from the interrupted one on
        from dataclasses import replace

        from actors.records.checkpoints import find_checkpoint

        def said(name: str, checkpoint: str, batch_pass: int, repetition: int, epoch_lines_done: int) -> None:
            screen.line(
                f"resumes pass {batch_pass}, repetition {repetition}, from {checkpoint} "
                f"({epoch_lines_done:,} lines of its epoch done)"
            )

        at, _ = find_checkpoint(batch.passes, batch.path, said)
        batch = replace(batch, passes=batch.passes[at - 1 :])
    cleared = preflight(batch, log_dir=None if args.no_log else args.log_dir)
    for line in (*cleared.summaries, cleared.memory):
        screen.line(line)
    _warn(batch, screen)
    return 0


def _warn(batch, screen) -> None:
    """Print what the batch file allows but probably did not mean (e.g. SELU without LeCun init)."""
    for warning in getattr(batch, "warnings", ()):
        screen.warning(str(warning))


def _fetch(args: argparse.Namespace, screen) -> int:
    from brain.data import fetch_mnist

    fetch_mnist(args.dest, args.mirror, report=screen.line)
    return 0


def _csv(args: argparse.Namespace, screen) -> int:
    from brain.data import convert_idx_to_csv

    count = convert_idx_to_csv(args.images, args.csv, args.labels)
    screen.line(f"wrote {count} lines to {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
