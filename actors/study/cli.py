"""The study's commands: ``bench speedup|channels|compare``, ``logs``, ``trace``, ``plot``, ``predict``.

``add_commands`` registers them on the main parser of ``actors.cli``; each handler
imports its module (and matplotlib, torch) only when it runs.  Handlers take
``(args, screen)`` like the others and raise ``UserError`` for what a user can fix.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from actors.options import REPO, positive
from actors.vocabulary import ExecutorName, Rounds
from brain.errors import UserError, shorten

MNIST = REPO / "data" / "mnist"
BENCH_OUT = REPO / "results" / "bench"
CHANNEL_TRAIN_LINES = 20_000  # the channel study's default subset: 100 configurations in a few minutes
EXECUTORS = ExecutorName.spellings()


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register ``bench``, ``logs``, ``trace``, ``plot`` and ``predict`` on ``commands``."""
    bench = commands.add_parser("bench", help="speedup, channel-capacity and executor benchmarks")
    studies = bench.add_subparsers(dest="study", required=True, metavar="STUDY")
    _speedup(studies.add_parser("speedup", help="epoch time, speedup and accuracy per worker count"))
    _channels(
        studies.add_parser(
            "channels",
            help="channel capacities × rounds × executors",
            description=f"Trains on the first {CHANNEL_TRAIN_LINES:,} training lines (see --train-lines).",
        )
    )
    _compare(studies.add_parser("compare", help="our executors against each other and PyTorch"))
    _logs(commands.add_parser("logs", help="summarise or filter a JSON log of a run"))
    _trace(commands.add_parser("trace", help="a run's timeline for Perfetto / chrome://tracing, or as PNG"))
    _plot(commands.add_parser("plot", help="result tables as PNG: one per pass, or several side by side"))
    _predict(commands.add_parser("predict", help="classify digit images with a trained network"))


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{shorten(text)!r} is not an integer ≥ 0")
    return value


def _percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"{shorten(text)!r} is not a percentage in (0, 100]")
    return value


def _list_of(choices: tuple[str, ...]):
    def parse(text: str) -> tuple[str, ...]:
        names = tuple(part.strip() for part in text.split(",") if part.strip())
        wrong = [name for name in names if name.lower() not in {c.lower() for c in choices}]
        if not names or wrong:
            raise argparse.ArgumentTypeError(
                f"{shorten(text)!r}: choose from {', '.join(choices)} (comma-separated)"
            )
        return tuple(next(c for c in choices if c.lower() == name.lower()) for name in names)

    return parse


def _workers(text: str) -> tuple[int, ...]:
    from actors.study.speedup import parse_workers

    try:
        return parse_workers(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{shorten(text)!r} is not a list of worker counts, e.g. 1,2,4,8"
        ) from None


def _common(parser: argparse.ArgumentParser, study: str) -> None:
    """Options every benchmark takes: data, subset, output folder, extra directives, logs."""
    parser.add_argument("--data", type=Path, default=MNIST, help="folder of the MNIST IDX files")
    parser.add_argument("--train-lines", type=positive, help="train on the first N training lines only")
    parser.add_argument("--test-lines", type=positive, help="test on the first N test lines only")
    parser.add_argument(
        "--out",
        type=Path,
        default=BENCH_OUT / study,
        help=f"folder for CSV, PNGs, batch files ({BENCH_OUT / study})",
    )
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a directive for every run, after the study's own (repeatable), e.g. --set Merge=Mean",
    )
    parser.add_argument("--log-dir", type=Path, help="also write the runs' JSON log into this folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or per-run lines")


def _speedup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers", type=_workers, help="worker counts (default 1,2,4,8; --thesis: 1,2,4,8,12,16)"
    )
    parser.add_argument(
        "--epochs", type=positive, help="training epochs per run, a test after each (default 1)"
    )
    parser.add_argument("--repeat", type=positive, help="repetitions per worker count (default 3)")
    parser.add_argument(
        "--thesis", action="store_true", help="the thesis' study: workers 1–16, 5 epochs, 5 repetitions"
    )
    parser.add_argument(
        "--executor", choices=EXECUTORS, default="process", help="where the steps run (process)"
    )
    parser.add_argument(
        "--semantics",
        choices=("thesis", "modern"),
        default="thesis",
        help="thesis: LearningRate 0.8, Lambda 1e-7, weights ±0.1; modern: cross-entropy SGD on mini-batches",
    )
    parser.add_argument("--worker-batch", type=positive, default=100, help="lines per slice (WorkerBatch)")
    parser.add_argument("--seed", type=_non_negative, default=42, help="seed of repetition 1 (then +1 each)")
    parser.add_argument(
        "--target", type=_percent, metavar="PERCENT",
        help="also report the seconds of training until a test pass reaches this accuracy, e.g. 92",
    )  # fmt: skip
    parser.add_argument(
        "--no-floor", action="store_true",
        help="leave out the floor (python -m actors.study.floor), otherwise run after the study",
    )  # fmt: skip
    _common(parser, "speedup")
    parser.set_defaults(handler=_run_speedup)


def _channels(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--parallel", type=positive, default=4, help="workers (default 4)")
    parser.add_argument(
        "--capacities",
        default="0,1,P,2P,unbounded",
        help="capacities swept for both channels: integers, P (= Parallel), 2P, unbounded",
    )
    parser.add_argument(
        "--grid",
        choices=("cross", "same"),
        default="cross",
        help="every data × output pair, or the same capacity for both",
    )
    parser.add_argument(
        "--rounds",
        type=_list_of(Rounds.spellings()),
        default=("Sync", "Async"),
        help="Sync,Async (both, the default) or one of them",
    )
    parser.add_argument(
        "--executors",
        type=_list_of(EXECUTORS),
        default=("thread", "process"),
        help=f"executors swept, comma-separated, of {', '.join(EXECUTORS)} (thread,process)",
    )
    parser.add_argument("--epochs", type=positive, default=1, help="training epochs per run (1)")
    parser.add_argument("--repeat", type=positive, default=1, help="repetitions per configuration")
    parser.add_argument("--worker-batch", type=positive, default=100, help="lines per slice (WorkerBatch)")
    parser.add_argument("--seed", type=_non_negative, default=42, help="seed of repetition 1 (then +1 each)")
    _common(parser, "channels")
    parser.set_defaults(handler=_run_channels, train_lines=CHANNEL_TRAIN_LINES)


def _compare(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--executors",
        type=_list_of(EXECUTORS),
        default=("inline", "thread", "process"),
        help=f"our executors compared, comma-separated, of {', '.join(EXECUTORS)} (inline,thread,process)",
    )
    parser.add_argument(
        "--parallel", type=_workers, help="worker counts per executor (default 1 and the cores)"
    )
    parser.add_argument("--epochs", type=positive, default=1, help="epochs of the thesis runs (default 1)")
    parser.add_argument(
        "--modern-epochs",
        type=positive,
        default=10,
        help="epochs of batch/modern.txt's training, ours and PyTorch's, a test after each (default 10)",
    )
    parser.add_argument("--repeat", type=positive, default=3, help="repetitions per configuration (3)")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out even when installed")
    parser.add_argument(
        "--torch-threads",
        type=_workers,
        default=(1,),
        help="PyTorch thread counts, e.g. 1,2 (default 1: on a shared machine more is slower)",
    )
    _common(parser, "compare")
    parser.set_defaults(handler=_run_compare)


def _which_log(parser: argparse.ArgumentParser) -> None:
    """``logs``' and ``trace``'s arguments: the log (or the newest in --log-dir) and the pass."""
    parser.add_argument("file", nargs="?", type=Path, help="a .jsonl log (default: the newest in --log-dir)")
    parser.add_argument(
        "--log-dir", type=Path, default=REPO / "logs", help="where to look for the newest log (logs/)"
    )
    parser.add_argument("--pass", dest="pass_number", type=positive, help="only the N-th pass of the log")


def _logs(parser: argparse.ArgumentParser) -> None:
    _which_log(parser)
    parser.add_argument("--event", action="append", default=[], help="only these events (repeatable)")
    parser.add_argument("--worker", type=_non_negative, help="only records about this worker")
    parser.add_argument("--json", action="store_true", help="print the selected records as JSON lines")
    parser.set_defaults(handler=_run_logs)


def _trace(parser: argparse.ArgumentParser) -> None:
    _which_log(parser)
    parser.add_argument("--out", type=Path, help="the trace JSON (default: the log's name with .trace.json)")
    parser.add_argument("--rounds", metavar="A:B", help="only rounds A to B of each pass (both included)")
    parser.add_argument(
        "--png", type=Path, help="also a picture of one pass: --rounds, or its first four rounds"
    )
    parser.set_defaults(handler=_run_trace)


def _plot(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "result_files", type=Path, nargs="+", metavar="RESULTFILE",
        help="result tables: ours, or the Go program's (12 or 15 columns); several are drawn side by side",
    )  # fmt: skip
    parser.add_argument(
        "--out", type=Path,
        help="the PNG (default: RESULTFILE with .png; with several tables plot.png beside the first)",
    )  # fmt: skip
    parser.set_defaults(handler=_run_plot)


def _predict(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--persistence", type=Path, required=True, help="a trained network (.npz)")
    parser.add_argument("images", nargs="*", type=Path, metavar="IMAGE", help="PNG/JPEG/… images of digits")
    parser.add_argument("--idx", type=Path, help="an IDX images file to take the --index samples from")
    parser.add_argument(
        "--index",
        type=_non_negative,
        action="append",
        default=[],
        help="a sample of --idx, 0-based (repeatable)",
    )
    parser.set_defaults(handler=_run_predict)


def _data(args: argparse.Namespace):
    from actors.study.data import prepare_data

    return prepare_data(args.data, args.out / "data", args.train_lines, args.test_lines)


def _run_speedup(args: argparse.Namespace, screen) -> int:
    from dataclasses import replace

    from actors.study import speedup
    from actors.study.runs import parse_directives

    plan = speedup.THESIS_PLAN if args.thesis else speedup.SpeedupPlan()
    plan = replace(
        plan,
        executor=args.executor,
        semantics=args.semantics,
        worker_batch=args.worker_batch,
        seed=args.seed,
        directives=parse_directives(args.settings),
        target=args.target,
        floor_data=None if args.no_floor else args.data,
        **{
            name: value
            for name in ("workers", "epochs", "repeat")
            if (value := getattr(args, name)) is not None
        },
    )
    return _study(speedup.run, plan, args, screen)


def _run_channels(args: argparse.Namespace, screen) -> int:
    from actors.study import channels
    from actors.study.runs import parse_directives

    try:
        capacities = channels.parse_capacities(args.capacities)
    except ValueError as error:
        raise UserError(
            f"--capacities: {error}", allowed="integers ≥ 0, P, 2P, unbounded, comma-separated"
        ) from None
    plan = channels.ChannelPlan(
        parallel=args.parallel,
        capacities=capacities,
        grid=args.grid,
        rounds=args.rounds,
        executors=args.executors,
        epochs=args.epochs,
        repeat=args.repeat,
        worker_batch=args.worker_batch,
        seed=args.seed,
        directives=parse_directives(args.settings),
    )
    return _study(channels.run, plan, args, screen)


def _run_compare(args: argparse.Namespace, screen) -> int:
    import os

    from actors.study import compare
    from actors.study.runs import parse_directives

    cores = os.cpu_count() or 1
    plan = compare.ComparePlan(
        executors=args.executors,
        parallel=args.parallel or tuple(sorted({1, cores})),
        epochs=args.epochs,
        modern_epochs=args.modern_epochs,
        repeat=args.repeat,
        torch=not args.no_torch,
        torch_threads=args.torch_threads,
        directives=parse_directives(args.settings),
    )
    return _study(compare.run, plan, args, screen)


def _run_logs(args: argparse.Namespace, screen) -> int:
    from actors.console import note
    from actors.study import logs

    path = args.file or logs.newest_log(args.log_dir)
    records = logs.select(logs.read_log(path, note), args.event, args.worker, args.pass_number)
    if args.json:
        logs.print_json(records)
    else:
        logs.show_summary(screen.console, path, records, show_records=bool(args.event))
    return 0


def _run_trace(args: argparse.Namespace, screen) -> int:
    from actors.console import note
    from actors.study import logs
    from actors.study.timeline import parse_rounds
    from actors.study.trace import make_trace

    rounds = None if args.rounds is None else parse_rounds(args.rounds)
    path = args.file or logs.newest_log(args.log_dir)
    out = args.out or path.with_name(path.name.removesuffix(".jsonl") + ".trace.json")
    make_trace(
        path, out, rounds=rounds, pass_number=args.pass_number, png=args.png, report=screen.line, note=note
    )
    return 0


def _run_plot(args: argparse.Namespace, screen) -> int:
    from actors.study.plot import plot_results

    first = args.result_files[0]
    default = first.with_name("plot.png") if len(args.result_files) > 1 else first.with_suffix(".png")
    out = args.out or default
    written = plot_results(args.result_files, out, report=screen.line)
    screen.line(f"wrote {written}")
    return 0


def _run_predict(args: argparse.Namespace, screen) -> int:
    from actors.study import predict

    if args.index and args.idx is None:
        raise UserError("--index needs --idx FILE")
    if args.idx is not None and not args.index:
        raise UserError("--idx needs --index N: which samples to classify", allowed="--idx FILE --index N…")
    if not args.images and args.idx is None:
        raise UserError("nothing to classify", allowed="IMAGE files, or --idx FILE --index N")
    network = predict.load_network(args.persistence)
    for image in args.images:
        screen.line(predict.describe(image.name, predict.classify(network, predict.read_image(image))))
    if args.idx is not None:
        samples = predict.read_idx_samples(args.idx, args.index)
        for index, pixels, label in samples:
            known = "" if label is None else f", label {label}"
            answer = predict.describe(f"{args.idx.name}[{index}]", predict.classify(network, pixels))
            screen.line(answer + known)
    return 0


def _study(run, plan, args: argparse.Namespace, screen) -> int:
    """Run a study's ``run(plan, data, out, console, …)`` and list the files it wrote."""
    from actors.study.runs import Output
    from brain.atomic import folder_problem

    for what, folder in (("output folder", args.out), ("log folder", args.log_dir)):
        if folder is not None and (problem := folder_problem(folder)) is not None:  # before any work
            raise UserError(f"the {what} {problem}", where=folder, allowed="a folder, or a new name")
    paths = run(plan, _data(args), Output(args.out, screen.console, args.log_dir, args.quiet))
    for path in paths.values():
        screen.line(f"wrote {path}", style="dim")
    return 0
