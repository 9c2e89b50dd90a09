"""Failures, each as its proxy.client.UpstreamError kind, and what they leave
behind: never a connection in the pool that could hand the next request a broken answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from proxy.client import UpstreamError
from proxy.upstream import Pool
from tests.unit.proxy.upstream.conftest import WAIT_S, RawFactory, free_port, read_head, until

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
SHORT_S = 0.1  # a read timeout the tests run into on purpose


async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_head(reader)


async def test_a_refused_connect_is_a_connection_failure() -> None:
    pool = Pool(f"http://127.0.0.1:{free_port()}")

    with pytest.raises(UpstreamError) as raised:
        await pool.request("GET", "/", [], connect_timeout_s=WAIT_S, read_timeout_s=WAIT_S)

    error = raised.value
    assert (error.kind, error.connection_failure, error.timeout) == ("connect", True, False)
    assert error.status == 502
    assert "connect to http://127.0.0.1:" in str(error)
    await pool.close()


async def test_a_connect_that_does_not_complete_in_time_is_a_timeout_and_a_connection_failure(
    raw_server: RawFactory,
) -> None:
    raw = await raw_server(lambda reader, writer: asyncio.sleep(WAIT_S))  # accepts, never does TLS
    pool = Pool(f"https://127.0.0.1:{raw.port}")

    with pytest.raises(UpstreamError) as raised:
        await pool.request("GET", "/", [], connect_timeout_s=SHORT_S, read_timeout_s=WAIT_S)

    error = raised.value
    assert (error.kind, error.connection_failure, error.timeout, error.status) == ("timeout", True, True, 504)
    assert "timed out" in str(error)
    await pool.close()


async def test_no_response_head_within_the_read_timeout_is_a_timeout_and_closes_the_connection(
    raw_server: RawFactory,
) -> None:
    raw = await raw_server(never_answer)
    pool = Pool(raw.url)

    with pytest.raises(UpstreamError) as raised:
        await pool.request("GET", "/", [], connect_timeout_s=WAIT_S, read_timeout_s=SHORT_S)

    error = raised.value
    assert (error.kind, error.connection_failure, error.timeout) == ("timeout", False, True)
    assert "sent no response head" in str(error)
    await until(lambda: raw.closed == 1)
    assert pool.idle == 0
    await pool.close()


async def test_a_body_that_stalls_between_chunks_times_out(raw_server: RawFactory) -> None:
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await asyncio.sleep(WAIT_S)

    raw = await raw_server(stall)
    pool = Pool(raw.url)
    response = await pool.request("GET", "/", [], connect_timeout_s=WAIT_S, read_timeout_s=SHORT_S)
    chunks = response.chunks()

    assert await anext(chunks) == b"first"
    with pytest.raises(UpstreamError) as raised:
        await anext(chunks)

    assert (raised.value.kind, raised.value.connection_failure) == ("timeout", False)
    assert "sent no body bytes" in str(raised.value)
    response.release()
    assert pool.idle == 0
    await pool.close()


async def test_a_long_body_that_keeps_flowing_does_not_time_out(raw_server: RawFactory) -> None:
    read_timeout_s = 1.0
    gap_s = read_timeout_s / 50  # far under the read timeout, many of them add up to more than it

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(75):
            writer.write(b"1\r\nx\r\n")
            await asyncio.sleep(gap_s)
        writer.write(b"0\r\n\r\n")

    raw = await raw_server(trickle)
    pool = Pool(raw.url)
    response = await pool.request("GET", "/", [], connect_timeout_s=WAIT_S, read_timeout_s=read_timeout_s)

    assert await response.read(100) == b"x" * 75
    response.release()
    await pool.close()


async def test_a_reader_slower_than_the_read_timeout_is_not_an_upstream_timeout(
    raw_server: RawFactory,
) -> None:
    size = 4 * 1024 * 1024

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + bytes(size))

    raw = await raw_server(handle)
    pool = Pool(raw.url)
    response = await pool.request("GET", "/", [], connect_timeout_s=WAIT_S, read_timeout_s=SHORT_S)
    conn = response._conn
    assert conn is not None
    await until(lambda: conn.pauses > 0)

    await asyncio.sleep(3 * SHORT_S)  # the reader dawdles while reading is paused

    assert len(await response.read(size)) == size
    response.release()
    await pool.close()


@pytest.mark.parametrize(
    "answer",
    [b"HTTP/1.1 2OO OK\r\n\r\n", b"NOT HTTP AT ALL\r\n\r\n", b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
     b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"],
    ids=["status", "status-line", "header", "duplicate-length"],
)  # fmt: skip
async def test_a_malformed_response_is_a_protocol_error(raw_server: RawFactory, answer: bytes) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(answer)

    raw = await raw_server(handle)
    pool = Pool(raw.url)

    with pytest.raises(UpstreamError) as raised:
        await pool.request("GET", "/", [], connect_timeout_s=WAIT_S, read_timeout_s=WAIT_S)

    assert (raised.value.kind, raised.value.connection_failure) == ("protocol", False)
    assert "malformed response" in str(raised.value)
    await until(lambda: raw.closed == 1)
    await pool.close()


async def test_a_response_cut_mid_body_is_a_protocol_error_and_the_next_request_gets_a_fresh_connection(
    raw_server: RawFactory,
) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        if len(raw.peers) == 1:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
            writer.close()
        else:
            writer.write(OK)

    raw = await raw_server(handle)
    pool = Pool(raw.url)
    cut = await pool.request("GET", "/", [], connect_timeout_s=WAIT_S, read_timeout_s=WAIT_S)

    with pytest.raises(UpstreamError) as raised:
        await cut.read(1000)
    cut.release()
    after = await pool.request("GET", "/", [], connect_timeout_s=WAIT_S, read_timeout_s=WAIT_S)

    assert (raised.value.kind, raised.value.connection_failure) == ("protocol", False)
    assert "before the end of the response body" in str(raised.value)
    assert (after.status, await after.read(10)) == (200, b"ok")
    assert len(raw.peers) == 2
    after.release()
    await pool.close()


async def test_a_connection_closed_before_the_response_head_is_a_reset(raw_server: RawFactory) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-")
        writer.close()

    raw = await raw_server(handle)
    pool = Pool(raw.url)

    with pytest.raises(UpstreamError) as raised:
        await pool.request("GET", "/", [], connect_timeout_s=WAIT_S, read_timeout_s=WAIT_S)

    assert (raised.value.kind, raised.value.connection_failure, raised.value.status) == ("reset", True, 502)
    assert "before the response head" in str(raised.value)
    await pool.close()


@pytest.mark.parametrize(
    "headers", [b"", b"Connection: Upgrade\r\nUpgrade: websocket\r\n"], ids=["bare", "upgrade"]
)
async def test_a_101_switching_protocols_is_a_protocol_error(raw_server: RawFactory, headers: bytes) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\n" + headers + b"\r\n\x81\x00")

    raw = await raw_server(handle)
    pool = Pool(raw.url)

    with pytest.raises(UpstreamError) as raised:
        await pool.request("GET", "/", [], connect_timeout_s=WAIT_S, read_timeout_s=WAIT_S)

    assert (raised.value.kind, raised.value.connection_failure) == ("protocol", False)
    assert "101" in str(raised.value)
    await pool.close()


async def test_bytes_after_a_complete_answer_make_the_connection_unusable(raw_server: RawFactory) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        stray = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray"  # a second answer nobody asked for
        writer.write(OK + (stray if len(raw.peers) == 1 else b""))
        await asyncio.sleep(WAIT_S)

    raw = await raw_server(handle)
    pool = Pool(raw.url)
    first = await pool.request("GET", "/", [], connect_timeout_s=WAIT_S, read_timeout_s=WAIT_S)

    assert await first.read(10) == b"ok"
    first.release()
    after = await pool.request("GET", "/", [], connect_timeout_s=WAIT_S, read_timeout_s=WAIT_S)

    assert await after.read(10) == b"ok"
    assert len(raw.peers) == 2
    after.release()
    await pool.close()


async def test_cancelling_a_request_closes_its_connection(raw_server: RawFactory) -> None:
    raw = await raw_server(never_answer)
    pool = Pool(raw.url)
    task = asyncio.create_task(pool.request("GET", "/", [], connect_timeout_s=WAIT_S, read_timeout_s=WAIT_S))
    await until(lambda: len(raw.peers) == 1)

    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    await until(lambda: raw.closed == 1)
    assert pool.idle == 0
    await pool.close()


async def test_cancelling_a_body_read_closes_its_connection(raw_server: RawFactory) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")

    raw = await raw_server(handle)
    pool = Pool(raw.url)
    response = await pool.request("GET", "/", [], connect_timeout_s=WAIT_S, read_timeout_s=WAIT_S)
    task = asyncio.create_task(response.read(100))
    await asyncio.sleep(0)

    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    await until(lambda: raw.closed == 1)
    response.release()
    assert pool.idle == 0
    await pool.close()


async def test_an_answer_before_the_whole_upload_ends_it_and_the_connection_is_not_reused(
    raw_server: RawFactory,
) -> None:
    answered = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n")
        answered.set()

    async def upload() -> AsyncIterator[bytes]:
        yield b"first"
        await answered.wait()
        await asyncio.sleep(0.01)  # the answer is read before the next chunk is offered
        for _ in range(100):
            yield b"more"

    raw = await raw_server(handle)
    pool = Pool(raw.url)

    response = await pool.request("POST", "/", [], upload(), connect_timeout_s=WAIT_S, read_timeout_s=WAIT_S)

    assert response.status == 413
    response.release()
    assert pool.idle == 0
    await pool.close()


async def test_an_upstream_that_stops_reading_the_request_body_times_out(raw_server: RawFactory) -> None:
    async def endless() -> AsyncIterator[bytes]:
        block = bytes(1024 * 1024)
        while True:
            yield block

    raw = await raw_server(never_answer)  # reads the head, then nothing
    pool = Pool(raw.url)

    with pytest.raises(UpstreamError) as raised:
        await pool.request("POST", "/", [], endless(), connect_timeout_s=WAIT_S, read_timeout_s=SHORT_S)

    assert (raised.value.kind, raised.value.connection_failure) == ("timeout", False)
    assert "stopped reading the request" in str(raised.value)
    await pool.close()
