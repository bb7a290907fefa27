"""The pool's messages: multiprocessing's framing read with one read, and function references pickled once."""

from __future__ import annotations

import functools
import multiprocessing
import os
import sys
import threading
import types

import pytest

from actors.executors.pool import READ_BYTES, Frames


def _framed(message: bytes) -> bytes:
    return len(message).to_bytes(4, "big", signed=True) + message


def test_messages_come_out_whole_however_the_reads_cut_them() -> None:
    messages = [b"", b"a", b"hello world", bytes(range(256)) * 3]
    stream = b"".join(_framed(message) for message in messages)
    for cut in range(len(stream) + 1):
        for second_cut in (cut, (cut + len(stream)) // 2, len(stream)):
            frames = Frames()
            found = []
            for piece in (stream[:cut], stream[cut:second_cut], stream[second_cut:]):
                found += frames.messages(piece)
            assert found == messages, (cut, second_cut)
            assert not frames.partial


def test_one_whole_message_read_at_once_is_the_message() -> None:
    frames = Frames()
    assert frames.messages(_framed(b"reply")) == [b"reply"]
    assert frames.messages(_framed(b"a") + _framed(b"bc")) == [b"a", b"bc"]
    assert frames.messages(_framed(b"abc")[:5]) == [] and frames.partial
    assert frames.messages(b"bc") == [b"abc"] and not frames.partial


def test_the_long_form_of_a_length_is_read_too() -> None:
    """A message of 2 GiB or more has the length -1 and then an 8-byte length (multiprocessing's form)."""
    long_form = (-1).to_bytes(4, "big", signed=True) + (5).to_bytes(8, "big") + b"hello"
    frames = Frames()
    assert frames.messages(long_form[:7]) == []
    assert frames.messages(long_form[7:] + _framed(b"!")) == [b"hello", b"!"]


def test_a_read_asks_for_the_rest_of_a_long_message_at_once() -> None:
    frames = Frames()
    assert frames.wanted() == READ_BYTES
    size = 10 * READ_BYTES
    assert frames.messages(_framed(b"x" * size)[:100]) == []
    assert frames.wanted() == size + 4 - 100
    huge = (-1).to_bytes(4, "big", signed=True) + (3 * size).to_bytes(8, "big")
    frames = Frames()
    assert frames.messages(huge + b"y") == []
    assert frames.wanted() == 3 * size - 1


@pytest.mark.parametrize("size", [0, 1, 16383, 16384, 16385, 300_000])
def test_what_a_connection_sends_is_read_back_with_one_read_per_arrival(size: int) -> None:
    """``Connection.send_bytes`` writes the length and a big message in two writes: both are read.
    (The sender is a thread: forking the test process, which runs threads of its own, is not safe.)"""
    reader, writer = multiprocessing.Pipe()
    message = os.urandom(size)
    sender = threading.Thread(target=lambda: [writer.send_bytes(message) for _ in range(2)], daemon=True)
    sender.start()
    frames, found, reads = Frames(), [], 0
    while len(found) < 2:
        data = os.read(reader.fileno(), frames.wanted())
        assert data, "the sender closed its end early"
        reads += 1
        found += frames.messages(data)
    sender.join(10)
    assert found == [message, message]
    if size < 16384:
        assert reads <= 2  # one read a message, or one for both
    reader.close()
    writer.close()


@pytest.mark.asyncio
async def test_a_plain_function_is_pickled_once_and_other_callables_every_call(one_process) -> None:
    assert [await one_process.call(0, _twice, value) for value in range(5)] == [0, 2, 4, 6, 8]
    assert list(one_process._references) == [_twice]
    for value in range(5):  # a new object every time: kept, they would pile up
        assert await one_process.call(0, functools.partial(pow, 2), value) == 2**value
        assert await one_process.call(0, os.getpid) > 0  # a built-in: pickled every call too
    assert list(one_process._references) == [_twice]


def _twice(value: int) -> int:
    return 2 * value


@pytest.mark.asyncio
async def test_a_function_the_process_cannot_load_is_an_error_of_the_call_not_a_death(one_process) -> None:
    """A module the parent has and the pool process cannot import: the call raises, the process lives."""
    module = types.ModuleType("only_in_the_parent")
    exec("def hello():\n    return 'hello'\n", module.__dict__)
    sys.modules[module.__name__] = module
    try:
        pid = await one_process.call(0, os.getpid)
        with pytest.raises(ModuleNotFoundError, match="only_in_the_parent"):
            await one_process.call(0, module.hello)
        assert await one_process.call(0, os.getpid) == pid
    finally:
        del sys.modules[module.__name__]
