"""Requests on one connection are answered in order, one handler at a time, never interleaved; the
connection is kept or closed as the client and its HTTP version ask."""

from __future__ import annotations

import asyncio

from proxy.dataplane.http1 import Request, Responder
from tests.unit.proxy.dataplane.http1.conftest import (
    WAIT_S,
    ServeFactory,
    one,
    open_slow_reader,
    request,
    responses,
)


async def test_pipelined_requests_are_answered_in_order_one_handler_at_a_time(serve: ServeFactory) -> None:
    running: list[str] = []
    overlaps: list[list[str]] = []

    async def slow_first(request: Request, responder: Responder) -> None:
        running.append(request.path)
        overlaps.append(list(running))
        if request.path == "/1":
            await asyncio.sleep(0.05)  # the first answer is the slowest: the others must wait for it
        await responder.start(200, [("X-Path", request.path)])
        for part in (b"a", b"b", b"c"):
            await responder.write(request.path.encode() + part)
            await asyncio.sleep(0)
        await responder.end()
        running.remove(request.path)

    served = await serve(slow_first)
    data = request("/1", close=False) + request("/2", close=False) + request("/3")  # one packet
    answers = responses(await served.exchange(data))
    assert [a.headers["x-path"] for a in answers] == ["/1", "/2", "/3"]
    assert [a.body for a in answers] == [b"/1a/1b/1c", b"/2a/2b/2c", b"/3a/3b/3c"]
    assert overlaps == [["/1"], ["/2"], ["/3"]]


async def test_pipelined_requests_with_bodies_each_get_their_own(serve: ServeFactory) -> None:
    served = await serve()
    chunked = b"3\r\ntwo\r\n0\r\n\r\n"
    data = (
        request("/a", "Content-Length: 3", method="POST", close=False, body=b"one")
        + request("/b", "Transfer-Encoding: chunked", method="POST", close=False, body=chunked)
        + request("/c")
    )
    answers = responses(await served.exchange(data))
    assert [(a.json()["path"], a.json()["body"]) for a in answers] == [
        ("/a", "one"),
        ("/b", "two"),
        ("/c", ""),
    ]


async def test_a_kept_alive_connection_serves_request_after_request(serve: ServeFactory) -> None:
    served = await serve()
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    peers = set()
    for n in range(3):
        writer.write(request(f"/{n}", close=False))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_S)
        assert b"connection:" not in head.lower()  # HTTP/1.1 keeps it without saying so
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        body = await asyncio.wait_for(reader.readexactly(length), WAIT_S)
        peers.add(one(head + body).json()["peer"])
    writer.close()
    assert peers == {"127.0.0.1"}
    assert [r.path for r in served.seen] == ["/0", "/1", "/2"]


async def test_connection_close_is_honoured(serve: ServeFactory) -> None:
    served = await serve()
    raw = await served.exchange(request("/x", close=True))  # read() returns: the server closed
    assert one(raw).headers["connection"] == "close"


async def test_http_1_0_is_closed_unless_it_asks_for_keep_alive(serve: ServeFactory) -> None:
    served = await serve()
    answer = one(await served.exchange(request("/x", version="1.0", close=False)))
    assert (answer.status, answer.headers["connection"]) == (200, "close")
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(request("/x", "Connection: keep-alive", version="1.0", close=False))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_S)
    assert b"\r\nConnection: keep-alive\r\n" in head
    await asyncio.wait_for(reader.readexactly(int(one(head).headers["content-length"])), WAIT_S)
    writer.write(request("/y", version="1.0", close=False))  # the same connection, a second request
    answer = one(await asyncio.wait_for(reader.read(), WAIT_S))
    writer.close()
    assert (answer.json()["path"], answer.headers["connection"]) == ("/y", "close")


async def test_a_client_that_reads_no_answers_gets_no_more_of_them(serve: ServeFactory) -> None:
    """Pipelined requests whose answers the client does not read are not all answered into memory: the
    next handler starts only when the transport's buffer has drained."""
    big = b"z" * (1024 * 1024)
    started: list[str] = []

    async def large(request: Request, responder: Responder) -> None:
        started.append(request.path)
        await responder.send(200, [], big)

    served = await serve(large)
    reader, writer = await open_slow_reader(served.port)
    writer.write(b"".join(request(f"/{n}", close=False) for n in range(64)))  # 64 MB of answers
    await asyncio.sleep(0.2)
    assert len(started) < 64  # bounded by what the socket buffers hold, far from all of them
    total = 0
    async with asyncio.timeout(WAIT_S * 4):
        while len(started) < 64 or total < 64 * len(big):
            chunk = await reader.read(1024 * 1024)
            if not chunk:
                break
            total += len(chunk)
    writer.close()
    assert len(started) == 64
