"""Every ambiguous or malformed request is refused in JSON and the connection closed, before a handler
sees it: nothing smuggled behind it is ever parsed as a request of its own."""

from __future__ import annotations

import asyncio

import pytest

from tests.unit.proxy.dataplane.http1.conftest import WAIT_S, ServeFactory, one, request, responses

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"


def post(framing: bytes, body: bytes = b"") -> bytes:
    return b"POST /x HTTP/1.1\r\nHost: a\r\n" + framing + b"\r\n" + body + SMUGGLED


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (post(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"), "conflicting_framing"),
        (post(b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", b"0\r\n\r\n"), "conflicting_framing"),
        (post(b"Content-Length: 5\r\nContent-Length: 6\r\n", b"hello"), "bad_request"),
        (post(b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello"), "bad_request"),
        (post(b"Content-Length: 5, 5\r\n", b"hello"), "bad_request"),
        (post(b"Content-Length: +5\r\n", b"hello"), "bad_request"),
        (post(b"Content-Length: 0x5\r\n", b"hello"), "bad_request"),
        (post(b"Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n"), "bad_request"),
        (post(b"Transfer-Encoding: chunked, identity\r\n", b"0\r\n\r\n"), "bad_request"),
        (post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", b"0\r\n\r\n"), "bad_request"),
        (post(b"Transfer-Encoding: gzip\r\n", b"0\r\n\r\n"), "bad_request"),
        (post(b"Transfer-Encoding : chunked\r\n", b"0\r\n\r\n"), "bad_request"),  # space before the colon
        (post(b"X-Folded: a\r\n Transfer-Encoding: chunked\r\n", b"0\r\n\r\n"), "bad_request"),  # obs-fold
        (post(b"Transfer-Encoding: chunked\r\n", b"zz\r\nhello\r\n0\r\n\r\n"), "bad_request"),
        (post(b"Transfer-Encoding: chunked\r\n", b"-5\r\nhello\r\n0\r\n\r\n"), "bad_request"),
        (post(b"Transfer-Encoding: chunked\r\n", b"5 ;x\r\nhello\r\n0\r\n\r\n"), "bad_request"),
        (post(b"Transfer-Encoding: chunked\r\n", b"fffffffffffffffff\r\nhello\r\n0\r\n\r\n"), "bad_request"),
        (post(b"Transfer-Encoding: chunked\r\n", b"5\nhello\r\n0\r\n\r\n"), "bad_request"),  # bare LF
        (post(b"Transfer-Encoding: chunked\r\n", b"5\r\nhelloXX0\r\n\r\n"), "bad_request"),
        (b"GET /x HTTP/1.1\r\nHost: a\x00b\r\n\r\n" + SMUGGLED, "bad_request"),  # NUL
        (b"GET /x HTTP/1.1\r\nHost: a\r\nX-Ctl: a\x01b\r\n\r\n" + SMUGGLED, "bad_request"),
        (b"GET /x HTTP/1.1\r\nHost: a\r\nX-Ctl: a\x7fb\r\n\r\n" + SMUGGLED, "bad_request"),
        (b"GET /x HTTP/1.1\r\nHost: a\r\nX-Cr: a\rb\r\n\r\n" + SMUGGLED, "bad_request"),  # bare CR
        (b"GET /x HTTP/1.1\nHost: a\n\n" + SMUGGLED, "bad_request"),  # bare LF
        (b"GET /x HTTP/1.1\r\nHost: a\nX: y\r\n\r\n" + SMUGGLED, "bad_request"),
        (b"GET /x HTTP/1.1\r\n\r\n" + SMUGGLED, "bad_request"),  # HTTP/1.1 without Host
        (b"GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" + SMUGGLED, "bad_request"),
        (
            b"GET /x HTTP/1.1\r\nHost: a\r\nContent-Type: a\r\ncontent-type: b\r\n\r\n" + SMUGGLED,
            "bad_request",
        ),
        (b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n" + SMUGGLED, "bad_request"),
        (b"GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n" + SMUGGLED, "bad_request"),
        (b"GET /x HTTP/1.2\r\nHost: a\r\n\r\n" + SMUGGLED, "bad_request"),
        (b"get /x HTTP/1.1\r\nHost: a\r\n\r\n" + SMUGGLED, "bad_request"),
        (
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,
            "bad_request",
        ),  # TLS on the plain port
        (b"GET http://127.0.0.1:1/x HTTP/1.1\r\nHost: a\r\n\r\n" + SMUGGLED, "invalid_path"),  # absolute-form
        (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n" + SMUGGLED, "invalid_path"),
        (b"GET /x HTTP/1.1\r\nHost: a\r\nSec-WebSocket-Key1: 1\r\n\r\n12345678" + SMUGGLED, "bad_request"),
        (b"GET example.com:443 HTTP/1.1\r\nHost: a\r\n\r\n" + SMUGGLED, "bad_request"),  # llhttp refuses it
    ],
)
async def test_an_ambiguous_or_malformed_request_is_a_json_400_and_nothing_behind_it_is_read(
    serve: ServeFactory, data: bytes, code: str
) -> None:
    served = await serve()
    raw = await served.exchange(data)
    answer = one(raw)  # one answer, then the close: the smuggled request never gets one
    assert (answer.status, answer.error) == (400, code)
    assert answer.headers["connection"] == "close"
    assert served.seen == []
    assert served.events == [code]


@pytest.mark.parametrize("version", [b"HTTP/2.0", b"HTTP/0.9"])
async def test_another_http_version_gets_a_505_written_as_http_1_1(
    serve: ServeFactory, version: bytes
) -> None:
    served = await serve()
    raw = await served.exchange(b"GET /x " + version + b"\r\nHost: a\r\n\r\n" + SMUGGLED)
    assert raw.startswith(b"HTTP/1.1 505 ")
    assert one(raw).error == "http_version_not_supported"
    assert served.seen == []


@pytest.mark.parametrize("target", [b"127.0.0.1:1", b"/x"])
async def test_connect_is_a_405_and_no_tunnel(serve: ServeFactory, target: bytes) -> None:
    served = await serve()
    answer = one(
        await served.exchange(b"CONNECT " + target + b" HTTP/1.1\r\nHost: a\r\n\r\nbytes-for-a-tunnel")
    )
    assert (answer.status, answer.error) == (405, "method_not_allowed")
    assert served.seen == []


async def test_options_asterisk_is_refused_like_any_target_that_is_not_a_path(serve: ServeFactory) -> None:
    served = await serve()
    answer = one(await served.exchange(request("*", method="OPTIONS")))
    assert (answer.status, answer.error) == (400, "invalid_path")
    assert served.seen == []


async def test_a_refusal_behind_pipelined_requests_comes_after_their_answers_in_order(
    serve: ServeFactory,
) -> None:
    served = await serve()
    data = request("/one", close=False) + request("/two", close=False) + post(b"Content-Length: 1, 2\r\n")
    answers = responses(await served.exchange(data))
    assert [a.status for a in answers] == [200, 200, 400]
    assert [a.json()["target"] for a in answers[:2]] == ["/one", "/two"]
    assert [r.target for r in served.seen] == ["/one", "/two"]


async def test_bytes_after_a_last_request_are_never_parsed(serve: ServeFactory) -> None:
    served = await serve()
    for first in (request("/last"), request("/last", version="1.0", close=False)):
        raw = await served.exchange(first + SMUGGLED)
        assert [a.json()["target"] for a in responses(raw)] == ["/last"]
    assert [r.target for r in served.seen] == ["/last", "/last"]


async def test_whitespace_at_the_end_of_a_header_value_is_not_part_of_it(serve: ServeFactory) -> None:
    served = await serve()
    answer = one(await served.exchange(request("/x", "X-Padded: value \t ")))
    assert ["X-Padded", "value"] in answer.json()["headers"]


async def test_the_server_still_serves_after_refusals(serve: ServeFactory) -> None:
    served = await serve()
    for data in (
        post(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"),
        b"\x00\xff\r\n\r\n",
        b"GET\r\n\r\n",
    ):
        assert one(await served.exchange(data)).status == 400
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(request("/fine"))
    assert one(await asyncio.wait_for(reader.read(), WAIT_S)).status == 200
    writer.close()
