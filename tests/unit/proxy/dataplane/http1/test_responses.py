"""The server frames what the handler answers: Content-Length when given, chunked for HTTP/1.1, until the
close for HTTP/1.0; no body for HEAD, 204, 304; the handler's hop-by-hop headers never reach the wire;
a cut response never looks complete; a handler that fails gets a JSON 500 or a cut."""

from __future__ import annotations

import asyncio

import pytest

from proxy.dataplane.http1 import Request, Responder
from tests.unit.proxy.dataplane.http1.conftest import WAIT_S, ServeFactory, dechunk, one, request


async def streamed(request: Request, responder: Responder) -> None:
    """start() with the headers the path names, then three chunks."""
    headers = [("X-Kind", "streamed")]
    if request.path == "/sized":
        headers.append(("Content-Length", "9"))
    await responder.start(200, headers)
    for part in (b"one", b"", b"two", b"six"):
        await responder.write(part)
    await responder.end()


async def test_a_whole_response_carries_its_content_length(serve: ServeFactory) -> None:
    served = await serve()
    answer = one(await served.exchange(request("/x")))
    assert int(answer.headers["content-length"]) == len(answer.body)


async def test_a_streamed_response_is_chunked_for_http_1_1(serve: ServeFactory) -> None:
    served = await serve(streamed)
    raw = await served.exchange(request("/x"))
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert b"\r\nTransfer-Encoding: chunked\r\n" in head
    assert dechunk(rest) == (b"onetwosix", b"")  # the empty write did not end the body


async def test_a_streamed_response_with_a_content_length_keeps_it(serve: ServeFactory) -> None:
    served = await serve(streamed)
    answer = one(await served.exchange(request("/sized")))
    assert (answer.headers["content-length"], answer.body) == ("9", b"onetwosix")
    assert "transfer-encoding" not in answer.headers


async def test_a_streamed_response_to_http_1_0_ends_with_the_connection(serve: ServeFactory) -> None:
    served = await serve(streamed)
    raw = await served.exchange(request("/x", "Connection: keep-alive", version="1.0", close=False))
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"\r\nConnection: close" in head
    assert b"Transfer-Encoding" not in head
    assert body == b"onetwosix"


async def test_head_keeps_the_content_length_and_sends_no_body(serve: ServeFactory) -> None:
    async def sized(request: Request, responder: Responder) -> None:
        await responder.send(200, [("Content-Length", "1234")], b"")

    served = await serve(sized)
    raw = await served.exchange(request("/x", method="HEAD", close=False) + request("/y", method="HEAD"))
    first, second = raw.split(b"\r\n\r\n")[:2]
    assert b"\r\nContent-Length: 1234" in first
    assert second.startswith(b"HTTP/1.1 200")  # nothing between the two heads: no body was sent
    assert raw.endswith(b"\r\n\r\n")


async def test_head_answered_with_a_streamed_body_sends_the_head_only(serve: ServeFactory) -> None:
    served = await serve(streamed)
    raw = await served.exchange(request("/x", method="HEAD"))
    assert raw.endswith(b"\r\n\r\n")
    assert b"one" not in raw


@pytest.mark.parametrize("status", [204, 304])
async def test_204_and_304_never_carry_a_body(serve: ServeFactory, status: int) -> None:
    async def bodiless(request: Request, responder: Responder) -> None:
        await responder.send(status, [("ETag", '"v1"'), ("Content-Length", "5")], b"hello")

    served = await serve(bodiless)
    raw = await served.exchange(request("/x", close=False) + request("/y"))
    first, second, rest = raw.split(b"\r\n\r\n", 2)
    assert second.startswith(f"HTTP/1.1 {status}".encode())
    assert rest == b""
    assert (b"Content-Length" in first) == (status == 304)  # a 304 may say the length; a 204 never


async def test_the_handlers_hop_by_hop_headers_never_reach_the_wire(serve: ServeFactory) -> None:
    async def meddling(request: Request, responder: Responder) -> None:
        await responder.send(200, [
            ("Connection", "keep-alive, X-Secret"), ("Keep-Alive", "timeout=99"),
            ("Transfer-Encoding", "gzip"), ("Upgrade", "h2c"), ("Proxy-Connection", "keep-alive"),
            ("TE", "trailers"), ("Trailer", "X-T"), ("X-End-To-End", "kept"),
        ], b"ok")  # fmt: skip

    served = await serve(meddling)
    answer = one(await served.exchange(request("/x")))
    assert set(answer.headers) == {"x-end-to-end", "content-length", "connection"}
    assert answer.headers["connection"] == "close"
    assert answer.body == b"ok"


async def test_a_header_that_would_split_the_head_is_refused_not_written(serve: ServeFactory) -> None:
    errors: list[BaseException] = []

    async def splitting(request: Request, responder: Responder) -> None:
        try:
            await responder.send(200, [("X-Split", "a\r\nSet-Cookie: evil=1")], b"")
        except ValueError as exc:
            errors.append(exc)
            await responder.send(502, [], b"refused")

    served = await serve(splitting)
    raw = await served.exchange(request("/x"))
    assert one(raw).status == 502
    assert b"evil" not in raw
    assert len(errors) == 1


async def test_a_body_shorter_than_its_content_length_is_cut_not_completed(serve: ServeFactory) -> None:
    async def short(request: Request, responder: Responder) -> None:
        await responder.start(200, [("Content-Length", "100")])
        await responder.write(b"only-ten!!")
        await responder.end()

    served = await serve(short)
    raw = await served.exchange(request("/x", close=False))
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Content-Length: 100" in head
    assert body == b"only-ten!!"  # and the connection closed: the client sees a short body


async def test_an_aborted_chunked_response_has_no_last_chunk(serve: ServeFactory) -> None:
    async def failing(request: Request, responder: Responder) -> None:
        await responder.start(200, [])
        await responder.write(b"partial")
        responder.abort()

    served = await serve(failing)
    raw = await served.exchange(request("/x", close=False))
    _, _, rest = raw.partition(b"\r\n\r\n")
    with pytest.raises(AssertionError, match="cut short"):
        dechunk(rest)


async def test_an_aborted_http_1_0_response_is_reset_not_ended(serve: ServeFactory) -> None:
    async def failing(request: Request, responder: Responder) -> None:
        await responder.start(200, [])
        await responder.write(b"partial")
        await asyncio.sleep(0.05)
        responder.abort()

    served = await serve(failing)
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(request("/x", version="1.0"))
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(
            drain(reader), WAIT_S
        )  # a close-delimited body must end in a reset, not an EOF
    writer.close()


async def drain(reader: asyncio.StreamReader) -> None:
    while await reader.read(65536):
        pass


async def test_a_handler_that_raises_before_answering_gets_a_json_500(serve: ServeFactory) -> None:
    async def broken(request: Request, responder: Responder) -> None:
        raise RuntimeError("a bug")

    served = await serve(broken)
    answer = one(await served.exchange(request("/x", close=False)))
    assert (answer.status, answer.error) == (500, "internal_error")
    assert b"a bug" not in answer.body
    assert served.events == ["handler_failed", "internal_error"]


async def test_a_handler_that_raises_mid_body_cuts_the_connection(serve: ServeFactory) -> None:
    async def broken(request: Request, responder: Responder) -> None:
        await responder.start(200, [])
        await responder.write(b"partial")
        raise RuntimeError("a bug")

    served = await serve(broken)
    raw = await served.exchange(request("/x", close=False))
    with pytest.raises(AssertionError, match="cut short"):
        dechunk(raw.partition(b"\r\n\r\n")[2])


async def test_a_handler_that_returns_without_ending_has_its_response_ended(serve: ServeFactory) -> None:
    async def forgetful(request: Request, responder: Responder) -> None:
        await responder.start(200, [])
        await responder.write(b"all of it")

    served = await serve(forgetful)
    raw = await served.exchange(request("/x"))
    assert dechunk(raw.partition(b"\r\n\r\n")[2]) == (b"all of it", b"")


async def test_a_reason_phrase_is_relayed(serve: ServeFactory) -> None:
    async def teapot(request: Request, responder: Responder) -> None:
        await responder.start(299, [("Content-Length", "0")], reason="Quite Fine")
        await responder.end()

    served = await serve(teapot)
    assert (await served.exchange(request("/x"))).startswith(b"HTTP/1.1 299 Quite Fine\r\n")
