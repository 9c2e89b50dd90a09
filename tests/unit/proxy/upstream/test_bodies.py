"""Bodies both ways: request bodies as bytes or streams (chunked or of a given length), the head this
client writes, response bodies read whole or streamed, and read flow control for a slow reader."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from proxy.upstream import HIGH_WATER, BodyLengthError, Pool, ResponseTooLarge
from tests.unit.proxy.upstream.conftest import WAIT_S, RawFactory, read_head, until

TIMEOUTS = {"connect_timeout_s": WAIT_S, "read_timeout_s": WAIT_S}
MB = 1024 * 1024
READ_SIZE = 256 * 1024  # the most one read of the event loop hands over (asyncio's and uvloop's)


async def stream(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        await asyncio.sleep(0)
        yield part


async def test_a_stream_of_unknown_length_goes_out_chunked_and_empty_parts_are_skipped(peer_url: str) -> None:
    pool = Pool(peer_url)

    response = await pool.request("POST", "/echo", [], stream(b"one;", b"", b"two;", b"three"), **TIMEOUTS)

    headers = dict(response.headers)
    assert (headers["X-Chunked"], await response.read(100)) == ("True", b"one;two;three")
    response.release()
    assert pool.idle == 1
    await pool.close()


@pytest.mark.parametrize("streamed", [False, True], ids=["bytes", "stream"])
async def test_a_body_of_known_length_goes_out_with_content_length(peer_url: str, streamed: bool) -> None:
    pool = Pool(peer_url)
    body, length = (stream(b"whole", b" body"), 10) if streamed else (b"whole body", None)

    response = await pool.request("PUT", "/echo", [], body, content_length=length, **TIMEOUTS)

    headers = dict(response.headers)
    assert (headers["X-Chunked"], headers["X-Length"]) == ("False", "10")
    assert await response.read(100) == b"whole body"
    response.release()
    await pool.close()


@pytest.mark.parametrize("parts", [(b"short",), (b"far too ", b"long")], ids=["short", "long"])
async def test_a_stream_that_disagrees_with_its_length_is_an_error_and_closes_the_connection(
    raw_server: RawFactory, parts: tuple[bytes, ...]
) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raw.heads.append(await read_head(reader))

    raw = await raw_server(handle)
    pool = Pool(raw.url)

    with pytest.raises(BodyLengthError):
        await pool.request("POST", "/", [], stream(*parts), content_length=8, **TIMEOUTS)

    await until(lambda: raw.closed == 1)
    assert pool.idle == 0
    await pool.close()


async def test_the_head_names_the_upstream_as_host_and_carries_only_the_callers_end_to_end_headers(
    raw_server: RawFactory,
) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raw.heads.append(await read_head(reader))
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")

    raw = await raw_server(handle)
    pool = Pool(raw.url)
    given = [("X-First", "1"), ("Connection", "close"), ("Content-Length", "7"), ("Host", "evil"),
             ("Transfer-Encoding", "chunked"), ("Keep-Alive", "timeout=1"), ("X-Last", "2")]  # fmt: skip

    response = await pool.request("GET", "/path?q=1", given, **TIMEOUTS)
    response.release()

    expected = f"GET /path?q=1 HTTP/1.1\r\nHost: 127.0.0.1:{raw.port}\r\nX-First: 1\r\nX-Last: 2\r\n\r\n"
    assert raw.heads == [expected.encode()]
    await pool.close()


@pytest.mark.parametrize("body", [None, b""], ids=["none", "empty"])
async def test_a_post_without_body_says_content_length_0(peer_url: str, body: bytes | None) -> None:
    pool = Pool(peer_url)

    response = await pool.request("POST", "/echo", [], body, **TIMEOUTS)

    assert (dict(response.headers)["X-Length"], await response.read(10)) == ("0", b"empty")
    response.release()
    assert pool.idle == 1
    await pool.close()


async def test_the_head_keeps_the_upstreams_header_names_and_order_as_sent(raw_server: RawFactory) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 201 Made It\r\nx-lower: a\r\nSet-Cookie: 1\r\nX-Value: caf\xe9\r\n"
                     b"Set-Cookie: 2\r\nContent-Length: 0\r\n\r\n")  # fmt: skip

    raw = await raw_server(handle)
    pool = Pool(raw.url)

    response = await pool.request("GET", "/", [], **TIMEOUTS)

    assert (response.status, response.reason) == (201, "Made It")
    assert response.headers == [("x-lower", "a"), ("Set-Cookie", "1"), ("X-Value", "café"),
                                ("Set-Cookie", "2"), ("Content-Length", "0")]  # fmt: skip
    response.release()
    await pool.close()


async def test_an_interim_100_continue_is_skipped(raw_server: RawFactory) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await asyncio.sleep(0.01)
        writer.write(b"HTTP/1.1 200 OK\r\nX-Final: 1\r\nContent-Length: 2\r\n\r\nok")

    raw = await raw_server(handle)
    pool = Pool(raw.url)

    response = await pool.request("POST", "/", [], b"data", **TIMEOUTS)

    assert (response.status, response.headers[0], await response.read(10)) == (200, ("X-Final", "1"), b"ok")
    response.release()
    assert pool.idle == 1
    await pool.close()


async def test_read_refuses_a_body_over_its_limit_and_closes_the_connection(peer_url: str) -> None:
    pool = Pool(peer_url)
    announced = await pool.request("POST", "/echo", [], b"x" * 100, **TIMEOUTS)
    streamed = await pool.request("GET", "/chunked", [], **TIMEOUTS)

    with pytest.raises(ResponseTooLarge):
        await announced.read(99)
    with pytest.raises(ResponseTooLarge):
        await streamed.read(5)

    announced.release()
    streamed.release()
    assert pool.idle == 0
    await pool.close()


async def test_a_slow_reader_of_a_100_mb_body_keeps_the_buffer_bounded(raw_server: RawFactory) -> None:
    total = 100 * MB
    block = bytes(MB)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total)
        for _ in range(total // MB):
            writer.write(block)
            await writer.drain()

    raw = await raw_server(handle)
    pool = Pool(raw.url)
    response = await pool.request("GET", "/", [], **TIMEOUTS)
    conn = response._conn
    assert conn is not None
    await until(lambda: conn.pauses > 0)  # the upstream ran ahead of a reader that has not begun

    received = 0
    async for chunk in response.chunks():
        received += len(chunk)
        await asyncio.sleep(0)  # a reader slower than loopback

    assert received == total
    assert conn.pauses >= 1
    assert HIGH_WATER < conn.peak <= HIGH_WATER + READ_SIZE
    response.release()
    assert pool.idle == 1
    await pool.close()
