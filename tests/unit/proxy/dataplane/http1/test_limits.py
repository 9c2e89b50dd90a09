"""The live limits act before the handler: 414, 431, 413 in the JSON error shape, the connection closed,
the handler never called; a lowered limit applies to the very next request."""

from __future__ import annotations

import asyncio

from proxy.dataplane.errors import BodyTooLarge
from proxy.dataplane.http1 import Request, Responder
from tests.unit.proxy.dataplane.http1.conftest import WAIT_S, ServeFactory, one, request


async def test_a_target_over_max_url_bytes_is_a_json_414_and_the_handler_never_runs(
    serve: ServeFactory,
) -> None:
    served = await serve()
    answer = one(await served.exchange(request("/" + "a" * 600)))
    assert (answer.status, answer.error) == (414, "uri_too_long")
    assert answer.headers["connection"] == "close"
    assert served.seen == []
    assert served.events == ["uri_too_long"]


async def test_a_query_counts_towards_the_target(serve: ServeFactory) -> None:
    served = await serve()
    assert one(await served.exchange(request("/x?" + "q" * 497))).status == 200  # 500 bytes: at the limit
    assert one(await served.exchange(request("/x?" + "q" * 498))).status == 414


async def test_too_many_header_lines_or_bytes_is_a_json_431(serve: ServeFactory) -> None:
    served = await serve()
    many = [f"X-H{i}: v" for i in range(20)]  # with Host and Connection: 22 lines, 20 allowed
    answer = one(await served.exchange(request("/x", *many)))
    assert (answer.status, answer.error) == (431, "too_many_headers")
    answer = one(await served.exchange(request("/x", "X-Big: " + "b" * 2100)))
    assert (answer.status, answer.error) == (431, "header_too_large")
    spread = [f"X-S{i}: {'s' * 300}" for i in range(8)]  # every line fits, together they do not
    answer = one(await served.exchange(request("/x", *spread)))
    assert (answer.status, answer.error) == (431, "header_too_large")
    assert served.seen == []


async def test_an_endless_header_line_is_refused_before_it_ends(serve: ServeFactory) -> None:
    served = await serve()
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(b"GET /x HTTP/1.1\r\nHost: a\r\nX-Endless: ")
    answer = asyncio.ensure_future(reader.read())
    sent = 0
    try:
        async with asyncio.timeout(WAIT_S):
            while not answer.done():  # never a CRLF: the server answers while the line is still growing
                writer.write(b"e" * 1024)
                sent += 1024
                await writer.drain()
                await asyncio.wait([answer], timeout=0.001)
    except ConnectionError:
        pass  # the server closed while we were still writing
    raw = await asyncio.wait_for(answer, WAIT_S)
    writer.close()
    answer_ = one(raw)
    assert (answer_.status, answer_.error) == (431, "header_too_large")
    assert sent < 1024 * 1024  # refused long before a megabyte, whatever the reads' sizes


async def test_a_declared_body_over_max_body_bytes_is_a_json_413_before_a_byte_of_it_is_read(
    serve: ServeFactory,
) -> None:
    served = await serve()
    head = request("/x", "Content-Length: 1001", method="POST")
    answer = one(await served.exchange(head))  # the head alone: the body is never waited for
    assert (answer.status, answer.error) == (413, "payload_too_large")
    answer = one(await served.exchange(head + b"x" * 1001))
    assert (answer.status, answer.error) == (413, "payload_too_large")
    assert served.seen == []
    assert one(await served.exchange(request("/x", "Content-Length: 1000", method="POST", body=b"y" * 1000)))


async def test_a_chunked_body_is_counted_as_it_arrives_and_fails_its_stream_past_the_limit(
    serve: ServeFactory,
) -> None:
    failures: list[BaseException] = []

    async def reader(request: Request, responder: Responder) -> None:
        try:
            await request.content.read()
        except BodyTooLarge as exc:
            failures.append(exc)
            await responder.send(413, [], b"too large")
            return
        await responder.send(200, [], b"whole")

    served = await serve(reader)
    chunks = b"".join(b"190\r\n" + b"c" * 400 + b"\r\n" for _ in range(3)) + b"0\r\n\r\n"  # 1200 bytes
    answer = one(await served.exchange(request("/x", "Transfer-Encoding: chunked", method="POST") + chunks))
    assert answer.status == 413
    assert answer.headers["connection"] == "close"  # the rest of the body is never read
    assert [type(exc) for exc in failures] == [BodyTooLarge]
    two = b"190\r\n" + b"c" * 400 + b"\r\n" + b"190\r\n" + b"c" * 400 + b"\r\n0\r\n\r\n"
    assert (
        one(await served.exchange(request("/x", "Transfer-Encoding: chunked", method="POST") + two)).status
        == 200
    )


async def test_the_limits_are_read_live_for_every_request(serve: ServeFactory) -> None:
    served = await serve()
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(request("/" + "a" * 300, close=False))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_S)
    assert head.startswith(b"HTTP/1.1 200")
    await asyncio.wait_for(
        reader.readexactly(int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])), WAIT_S
    )
    served.limits = served.limits.model_copy(update={"max_url_bytes": 256})  # a reload lowers it
    writer.write(request("/" + "a" * 300))  # the same connection, the next request
    answer = one(await asyncio.wait_for(reader.read(), WAIT_S))
    writer.close()
    assert (answer.status, answer.error) == (414, "uri_too_long")
    assert "256 bytes" in answer.json()["error"]["message"]


async def test_no_refusal_echoes_the_input(serve: ServeFactory) -> None:
    served = await serve()
    secret = "Bearer s3cret-token"
    attempts = [
        request("/" + "s3cret" * 100),
        request("/x", f"Authorization: {secret}", *[f"X-{i}: s3cret" for i in range(25)]),
        request("/x", f"Authorization: {secret}\x00"),
        b"GET /x HTTP/1.1\r\nHost: a\r\nAuthorization: " + secret.encode() + b"\r\n folded\r\n\r\n",
    ]
    for data in attempts:
        raw = await served.exchange(data)
        assert raw.startswith(b"HTTP/1.1 4")
        assert b"s3cret" not in raw
