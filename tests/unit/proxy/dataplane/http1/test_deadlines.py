"""The deadlines, from the live limits: a head that does not arrive in time is a 408 (slowloris), an idle
kept-alive connection is closed without a word, a body that stalls or trickles past its whole-body
deadline fails its stream with BodyReadTimeout (the handler answers 408), and a body the client was not
yet invited to send (`Expect: 100-continue`) is not timed."""

from __future__ import annotations

import asyncio

from proxy.dataplane.errors import BodyReadTimeout
from proxy.dataplane.http1 import Request, Responder
from tests.unit.proxy.dataplane.http1.conftest import WAIT_S, ServeFactory, one, request


async def answer_408_on_timeout(request: Request, responder: Responder) -> None:
    """Reads the body as the proxy's handler does; BodyReadTimeout is its 408."""
    try:
        body = await request.content.read()
    except BodyReadTimeout:
        await responder.send(408, [("Content-Type", "text/plain")], b"the request body stopped arriving")
        return
    await responder.send(200, [], body)


async def test_a_client_that_stalls_in_the_head_gets_a_json_408_and_the_connection_closes(
    serve: ServeFactory,
) -> None:
    served = await serve()
    answer = one(await served.exchange(b"GET /x HTTP/1.1\r\nHost: a\r\n"))  # never finished
    assert (answer.status, answer.error) == (408, "request_timeout")
    assert served.seen == []
    assert served.events == ["request_timeout"]


async def test_a_head_trickled_byte_by_byte_still_gets_408_at_its_deadline(serve: ServeFactory) -> None:
    served = await serve()
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    answer = asyncio.ensure_future(reader.read())
    head, sent = b"GET /x HTTP/1.1\r\nHost: a\r\nX-Slow: " + b"s" * 200, 0
    try:
        while not answer.done() and sent < len(head):  # one byte every 10 ms: 2 s for the head
            writer.write(head[sent : sent + 1])
            sent += 1
            await asyncio.wait([answer], timeout=0.01)
    except ConnectionError:
        pass
    raw = await asyncio.wait_for(answer, WAIT_S)
    writer.close()
    assert one(raw).status == 408
    assert sent < len(head)  # refused while the head was still arriving


async def test_a_connection_that_never_sends_a_byte_is_closed_without_an_answer(serve: ServeFactory) -> None:
    served = await serve()
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    assert await asyncio.wait_for(reader.read(), WAIT_S) == b""
    writer.close()
    assert served.events == []


async def test_an_idle_kept_alive_connection_is_closed_without_an_answer(serve: ServeFactory) -> None:
    served = await serve()
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(request("/first", close=False))
    raw = await asyncio.wait_for(reader.read(), WAIT_S)  # the answer, then nothing: closed when idle
    writer.close()
    assert one(raw).status == 200
    assert served.events == []


async def test_a_body_that_stalls_fails_its_stream_and_the_handler_answers_408(serve: ServeFactory) -> None:
    served = await serve(answer_408_on_timeout)
    head = request("/x", "Content-Length: 100", method="POST")
    answer = one(await served.exchange(head + b"only-part"))
    assert answer.status == 408
    assert answer.headers["connection"] == "close"


async def test_a_body_trickled_under_the_gap_still_fails_at_the_whole_body_deadline(
    serve: ServeFactory,
) -> None:
    served = await serve(answer_408_on_timeout, client_read_timeout_s=2.0, client_body_timeout_s=0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(request("/x", "Content-Length: 400", method="POST"))
    answer = asyncio.ensure_future(reader.read())
    sent = 0
    try:
        while not answer.done() and sent < 400:  # one byte every 10 ms: 4 s, never a 2 s gap
            writer.write(b"x")
            sent += 1
            await asyncio.wait([answer], timeout=0.01)
    except ConnectionError:
        pass
    raw = await asyncio.wait_for(answer, WAIT_S)
    writer.close()
    assert one(raw).status == 408
    assert sent < 400


async def test_a_body_awaiting_its_100_continue_is_not_timed_until_it_is_invited(serve: ServeFactory) -> None:
    release = asyncio.Event()

    async def slow_to_read(request: Request, responder: Responder) -> None:
        await release.wait()  # longer than client_read_timeout_s before the body is wanted
        await answer_408_on_timeout(request, responder)

    served = await serve(slow_to_read, client_read_timeout_s=0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(request("/x", "Content-Length: 4", "Expect: 100-continue", method="POST"))
    await asyncio.sleep(0.5)  # well past the gap: nothing may have been failed meanwhile
    release.set()
    assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_S) == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"body")
    answer = one(await asyncio.wait_for(reader.read(), WAIT_S))
    writer.close()
    assert (answer.status, answer.body) == (200, b"body")


async def test_reading_paused_by_the_server_is_not_counted_as_the_clients_gap(serve: ServeFactory) -> None:
    release = asyncio.Event()
    big = 1024 * 1024

    async def slow_reader(request: Request, responder: Responder) -> None:
        first = await request.content.read_chunk()
        await release.wait()  # the stream fills past its high-water mark: the server stops reading
        rest = await request.content.read()
        await responder.send(200, [], str(len(first) + len(rest)).encode())

    served = await serve(slow_reader, max_body_bytes=2 * big, client_read_timeout_s=0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(request("/x", f"Content-Length: {big}", method="POST") + b"b" * big)
    await asyncio.sleep(0.5)  # paused by the server for longer than the gap timeout
    release.set()
    answer = one(await asyncio.wait_for(reader.read(), WAIT_S))
    writer.close()
    assert (answer.status, answer.body) == (200, str(big).encode())
