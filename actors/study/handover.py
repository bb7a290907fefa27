"""``python -m actors.study.handover``: what one hand-over through a channel costs, against asyncio's queue.

A round of the pass hands items over four times while the receiver waits: each
worker waits for its slice, the coordinator for each report.  This measures that
pattern alone, in one process: a task sends an item to an echo task and waits for
the echo's answer on a second channel; the echo lets the loop run twice before it
answers, so every receive on both sides has to wait.  Three ways to carry it:

- ``channel``: ``channels.Channel`` as the pass makes it (``fast_path``);
- ``stream``: anyio's memory object streams, used directly;
- ``queue``: ``asyncio.Queue``, the asyncio floor's (``python -m actors.study.floor``).

Printed: CPU microseconds per round trip (two hand-overs), the median of
``--repeat`` runs of ``--trips`` round trips, interleaved.  On a shared machine the
CPU time still varies; instructions do not: ``--kind K`` runs one kind once, for
``valgrind --tool=callgrind`` (the README has the command).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import AsyncIterable, Awaitable, Callable

import anyio
import uvloop

from channels import Channel

KINDS = ("channel", "stream", "queue")
CAPACITY = 2  # the pass' channels hold Parallel items


async def _trips(
    send: Callable[[int], Awaitable[None]], receive: Callable[[], Awaitable[int]], trips: int
) -> float:
    began = time.process_time()
    for item in range(trips):
        await send(item)
        await receive()
    return time.process_time() - began


async def _through(
    send_out: Callable[[int], Awaitable[None]],
    receive_out: AsyncIterable[int],
    send_back: Callable[[int], Awaitable[None]],
    receive_back: Callable[[], Awaitable[int]],
    close_out: Callable[[], None],
    trips: int,
) -> float:
    """Round trips out and back through a pair of anyio-style channels, the echo in a task group."""

    async def echo() -> None:
        async for item in receive_out:
            await anyio.sleep(0)
            await anyio.sleep(0)
            await send_back(item)

    async with anyio.create_task_group() as group:
        group.start_soon(echo)
        seconds = await _trips(send_out, receive_back, trips)
        close_out()
    return seconds


async def _channel(trips: int) -> float:
    out: Channel[int] = Channel(CAPACITY, name="out", fast_path=True)
    back: Channel[int] = Channel(CAPACITY, name="back", fast_path=True)
    return await _through(out.send, out, back.send, back.receive, out.close, trips)


async def _stream(trips: int) -> float:
    send_out, receive_out = anyio.create_memory_object_stream[int](CAPACITY)
    send_back, receive_back = anyio.create_memory_object_stream[int](CAPACITY)
    return await _through(
        send_out.send, receive_out, send_back.send, receive_back.receive, send_out.close, trips
    )


async def _queue(trips: int) -> float:
    out: asyncio.Queue[int | None] = asyncio.Queue(CAPACITY)
    back: asyncio.Queue[int | None] = asyncio.Queue(CAPACITY)

    async def echo() -> None:
        while (item := await out.get()) is not None:
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            await back.put(item)

    task = asyncio.create_task(echo())
    seconds = await _trips(out.put, back.get, trips)
    await out.put(None)
    await task
    return seconds


RUNS: dict[str, Callable[[int], Awaitable[float]]] = {"channel": _channel, "stream": _stream, "queue": _queue}


def seconds_per_trip(kind: str, trips: int) -> float:
    """CPU seconds per round trip of ``kind``, one run of ``trips``, on uvloop as the runtime runs."""
    return uvloop.run(RUNS[kind](trips)) / trips


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m actors.study.handover", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--trips", type=int, default=20_000, help="round trips per run (20000)")
    parser.add_argument("--repeat", type=int, default=7, help="runs per kind, interleaved (7)")
    parser.add_argument("--kind", choices=KINDS, help="run this kind once and print nothing (for callgrind)")
    args = parser.parse_args(argv)
    if min(args.trips, args.repeat) < 1:
        print("error: --trips and --repeat take positive integers", file=sys.stderr)
        return 2
    if args.kind:
        seconds_per_trip(args.kind, args.trips)
        return 0
    runs: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for _ in range(args.repeat):
        for kind in KINDS:
            runs[kind].append(seconds_per_trip(kind, args.trips))
    queue = statistics.median(runs["queue"])
    print(f"{'kind':8} {'µs/trip':>8} {'range':>13} {'× queue':>8}")
    for kind, values in runs.items():
        median = statistics.median(values)
        spread = f"{min(values) * 1e6:.1f}–{max(values) * 1e6:.1f}"
        print(f"{kind:8} {median * 1e6:>8.1f} {spread:>13} {median / queue:>7.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
