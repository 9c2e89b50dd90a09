"""Request bodies are streamed to the handler with flow control towards the client, `100 Continue` is sent
only when the handler reads, and responses are written no faster than the client reads them."""

from __future__ import annotations

import asyncio

from proxy.dataplane.http1 import HIGH_WATER, BodyMalformed, Request, Responder
from tests.unit.proxy.dataplane.http1.conftest import (
    WAIT_S,
    ServeFactory,
    one,
    open_slow_reader,
    request,
    until,
)

MB = 1024 * 1024
READ_SIZE = 256 * 1024  # the most one read of the event loop hands over (asyncio's and uvloop's)


async def test_a_body_is_read_chunk_by_chunk_as_it_arrives(serve: ServeFactory) -> None:
    first_seen = asyncio.Event()

    async def streaming(request: Request, responder: Responder) -> None:
        parts = []
        async for chunk in request.content.iter_any():
            parts.append(chunk)
            first_seen.set()
        assert request.content.at_eof()
        await responder.send(200, [], b"|".join(parts))

    served = await serve(streaming)
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(request("/x", "Transfer-Encoding: chunked", method="POST") + b"5\r\nfirst\r\n")
    await asyncio.wait_for(first_seen.wait(), WAIT_S)  # the handler has it while the rest is unsent
    writer.write(b"6\r\nsecond\r\n0\r\n\r\n")
    answer = one(await asyncio.wait_for(reader.read(), WAIT_S))
    writer.close()
    assert answer.body == b"first|second"


async def test_a_client_uploading_faster_than_the_handler_reads_is_paused(serve: ServeFactory) -> None:
    checked = asyncio.Event()
    buffered: list[int] = []

    async def slow(request: Request, responder: Responder) -> None:
        content = request.content
        await until(lambda: content.buffered > HIGH_WATER)
        await asyncio.sleep(0.2)  # the client keeps sending all the while: the server must not read it
        buffered.append(content.buffered)
        checked.set()
        total = len(await content.read())
        await responder.send(200, [], str(total).encode())

    served = await serve(slow, max_body_bytes=64 * MB)
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(request("/x", f"Content-Length: {32 * MB}", method="POST"))
    sender = asyncio.ensure_future(_send(writer, 32 * MB))
    await asyncio.wait_for(checked.wait(), WAIT_S)
    answer = one(await asyncio.wait_for(reader.read(), WAIT_S * 2))
    await sender
    writer.close()
    assert buffered[0] <= HIGH_WATER + READ_SIZE  # not 32 MB: the socket was left unread
    assert answer.body == str(32 * MB).encode()


async def _send(writer: asyncio.StreamWriter, size: int) -> None:
    block = b"u" * MB
    for _ in range(size // MB):
        writer.write(block)
        await writer.drain()


async def test_a_response_is_written_no_faster_than_the_client_reads_it(serve: ServeFactory) -> None:
    written: list[int] = []

    async def large(request: Request, responder: Responder) -> None:
        await responder.start(200, [("Content-Length", str(64 * MB))])
        block = b"d" * (64 * 1024)
        for n in range(64 * MB // len(block)):
            await responder.write(block)
            written.append(n)
        await responder.end()

    served = await serve(large)
    reader, writer = await open_slow_reader(served.port)
    writer.write(request("/x"))
    await until(lambda: len(written) > 0)
    await asyncio.sleep(0.2)  # the client reads nothing: the handler must be waiting on write()
    assert len(written) * 64 * 1024 < 16 * MB
    total = 0
    async with asyncio.timeout(WAIT_S * 4):
        while chunk := await reader.read(MB):
            total += len(chunk)
    writer.close()
    assert total > 64 * MB  # the head and every byte


async def test_100_continue_is_sent_when_the_handler_first_reads_the_body(serve: ServeFactory) -> None:
    served = await serve()
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(request("/x", "Content-Length: 5", "Expect: 100-continue", method="POST"))
    assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_S) == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"hello")
    answer = one(await asyncio.wait_for(reader.read(), WAIT_S))
    writer.close()
    assert (answer.status, answer.json()["body"], answer.json()["expect_continue"]) == (200, "hello", True)


async def test_no_100_continue_when_the_handler_answers_without_reading_and_the_connection_closes(
    serve: ServeFactory,
) -> None:
    async def refusing(request: Request, responder: Responder) -> None:
        await responder.send(401, [], b"who are you")

    served = await serve(refusing)
    raw = await served.exchange(
        request("/x", "Content-Length: 5", "Expect: 100-continue", method="POST", close=False)
    )
    answer = one(raw)  # the whole of it: no 100 before, and the server closed after
    assert (answer.status, answer.headers["connection"]) == (401, "close")


async def test_an_expectation_other_than_100_continue_is_a_json_417(serve: ServeFactory) -> None:
    served = await serve()
    answer = one(await served.exchange(request("/x", "Content-Length: 5", "Expect: teapot", method="POST")))
    assert (answer.status, answer.error) == (417, "expectation_failed")
    assert served.seen == []


async def test_a_declared_body_over_the_limit_is_413_without_a_100(serve: ServeFactory) -> None:
    served = await serve()
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(request("/x", "Content-Length: 2000000", "Expect: 100-continue", method="POST", close=False))
    raw = await asyncio.wait_for(reader.read(), WAIT_S)
    writer.close()
    answer = one(raw)
    assert (answer.status, answer.error, answer.headers["connection"]) == (413, "payload_too_large", "close")


async def test_http_1_0_expectations_are_ignored(serve: ServeFactory) -> None:
    served = await serve()
    data = request("/x", "Content-Length: 5", "Expect: teapot", method="POST", version="1.0", body=b"hello")
    answer = one(await served.exchange(data))
    assert (answer.status, answer.json()["body"], answer.json()["expect_continue"]) == (200, "hello", False)


async def test_a_chunked_body_that_breaks_after_its_handler_started_fails_its_stream(
    serve: ServeFactory,
) -> None:
    failures: list[BaseException] = []

    async def reading(request: Request, responder: Responder) -> None:
        try:
            await request.content.read()
        except BodyMalformed as exc:
            failures.append(exc)
            await responder.send(400, [], b"bad body")

    served = await serve(reading)
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(request("/x", "Transfer-Encoding: chunked", method="POST", close=False) + b"3\r\nabc\r\n")
    await until(lambda: len(served.seen) == 1)
    writer.write(b"zz\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
    answer = one(await asyncio.wait_for(reader.read(), WAIT_S))
    writer.close()
    assert (answer.status, answer.headers["connection"]) == (400, "close")
    assert len(failures) == 1
    assert [r.path for r in served.seen] == ["/x"]


async def test_a_client_that_leaves_mid_body_fails_the_stream_and_cancels_the_handler(
    serve: ServeFactory,
) -> None:
    outcome: list[str] = []

    async def reading(request: Request, responder: Responder) -> None:
        try:
            await request.content.read()
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        except ConnectionError:
            outcome.append("gone")

    served = await serve(reading)
    _, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(request("/x", "Content-Length: 100", method="POST") + b"part")
    await until(lambda: len(served.seen) == 1)
    writer.close()
    await until(lambda: bool(outcome))
    assert outcome[0] in ("cancelled", "gone")
    await until(lambda: served.server.connections == 0)
