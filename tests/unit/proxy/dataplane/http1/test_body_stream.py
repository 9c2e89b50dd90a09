"""BodyStream alone, with a fake connection: what the handler reads, when the connection is told to pause
and resume reading, and when `100 Continue` is asked for."""

from __future__ import annotations

import asyncio

import pytest

from proxy.dataplane.http1 import EMPTY, HIGH_WATER, LOW_WATER, BodyStream


class Owner:
    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.calls: list[str] = []

    def body_full(self, stream: BodyStream) -> None:
        self.calls.append("full")

    def body_drained(self, stream: BodyStream) -> None:
        self.calls.append("drained")

    def continue_wanted(self, stream: BodyStream) -> None:
        self.calls.append("continue")


async def test_chunks_come_out_as_they_went_in_and_read_n_keeps_the_rest() -> None:
    stream = BodyStream(Owner())
    for chunk in (b"abc", b"defg"):
        stream.feed(chunk)
    stream.feed_eof()
    assert await stream.read(2) == b"ab"
    assert await stream.read_chunk() == b"c"
    assert [chunk async for chunk in stream.iter_any()] == [b"defg"]
    assert (await stream.read(), stream.at_eof(), stream.received) == (b"", True, 7)


async def test_the_connection_is_told_to_pause_above_high_water_and_resume_at_low_water() -> None:
    owner = Owner()
    stream = BodyStream(owner)
    block = b"x" * (64 * 1024)
    while stream.buffered <= HIGH_WATER:
        stream.feed(block)
    stream.feed(block)
    assert owner.calls == ["full"]  # once, however much more arrives
    while stream.buffered > LOW_WATER:
        await stream.read_chunk()
    assert owner.calls == ["full", "drained"]


async def test_100_continue_is_asked_for_at_the_first_read_that_waits_and_only_then() -> None:
    owner = Owner()
    stream = BodyStream(owner, expecting=True)
    reading = asyncio.ensure_future(stream.read())
    await asyncio.sleep(0)
    assert owner.calls == ["continue"]
    stream.feed(b"body")
    stream.feed_eof()
    assert await reading == b"body"
    assert owner.calls == ["continue"]


async def test_an_error_is_raised_in_place_of_what_is_left_and_one_reader_at_a_time() -> None:
    stream = BodyStream(Owner())
    first = asyncio.ensure_future(stream.read_chunk())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="another task"):
        await stream.read_chunk()
    stream.feed(b"unread")
    assert await first == b"unread"
    stream.feed(b"lost")
    stream.set_exception(ValueError("broken"))
    with pytest.raises(ValueError, match="broken"):
        await stream.read()
    assert isinstance(stream.exception(), ValueError)


async def test_a_chunk_past_the_limit_is_refused() -> None:
    stream = BodyStream(Owner(), limit=5)
    assert stream.feed(b"12345")
    assert not stream.feed(b"6")
    assert stream.buffered == 5


async def test_the_empty_body_is_always_at_its_end_and_cannot_be_failed() -> None:
    EMPTY.set_exception(ValueError("ignored"))
    assert (await EMPTY.read(), await EMPTY.read_chunk(), EMPTY.at_eof(), EMPTY.exception()) == (
        b"",
        b"",
        True,
        None,
    )
    with pytest.raises(RuntimeError):
        EMPTY.feed(b"x")
