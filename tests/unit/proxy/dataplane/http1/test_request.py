"""What the handler is given: the target byte for byte, headers in wire order (latin-1), the peer, and
the facts about the body and the connection the client declared."""

from __future__ import annotations

from tests.unit.proxy.dataplane.http1.conftest import ServeFactory, one, request


async def test_the_target_reaches_the_handler_exactly_as_received(serve: ServeFactory) -> None:
    served = await serve()
    target = "/api/x/%C3%A9//a/../b?b=2&a=1&a=%2F+x&empty=&flag"
    seen = one(await served.exchange(request(target, method="PATCH"))).json()
    assert (seen["method"], seen["target"]) == ("PATCH", target)
    assert (seen["path"], seen["query"]) == ("/api/x/%C3%A9//a/../b", "b=2&a=1&a=%2F+x&empty=&flag")
    assert seen["version"] == "1.1"


async def test_repeated_headers_arrive_in_order_and_bytes_survive_as_latin_1(serve: ServeFactory) -> None:
    served = await serve()
    data = (b"GET /x HTTP/1.1\r\nHost: a\r\nX-Multi: one\r\nX-Other: o\r\nx-multi: two\r\n"
            b"X-Bytes: \xe9\xff\r\n\r\n")  # fmt: skip
    await served.exchange(data)
    [seen] = served.seen
    assert seen.headers.getall("X-Multi") == ["one", "two"]
    assert seen.headers["X-Bytes"].encode("latin-1") == b"\xe9\xff"
    assert seen.raw_headers[1:4] == [(b"X-Multi", b"one"), (b"X-Other", b"o"), (b"x-multi", b"two")]
    assert (seen.peer, isinstance(seen.peer_port, int)) == ("127.0.0.1", True)


async def test_the_body_and_connection_facts_are_what_the_client_declared(serve: ServeFactory) -> None:
    served = await serve()
    plain = one(await served.exchange(request("/x"))).json()
    assert (plain["body_exists"], plain["content_length"], plain["chunked"], plain["keep_alive"]) == (
        False, None, False, False)  # fmt: skip
    sized = one(
        await served.exchange(request("/x", "Content-Length: 3", method="PUT", close=False, body=b"abc"))
    )
    assert (sized.json()["body_exists"], sized.json()["content_length"], sized.json()["keep_alive"]) == (
        True, 3, True)  # fmt: skip
    empty = one(await served.exchange(request("/x", "Content-Length: 0", method="POST"))).json()
    assert (empty["body_exists"], empty["content_length"]) == (False, 0)
    chunked = one(await served.exchange(request("/x", "Transfer-Encoding: chunked", method="POST",
                                                body=b"0\r\n\r\n"))).json()  # fmt: skip
    assert (chunked["body_exists"], chunked["chunked"], chunked["content_length"]) == (True, True, None)


async def test_trailers_of_a_chunked_body_are_read_and_dropped(serve: ServeFactory) -> None:
    served = await serve()
    body = b"3\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n"
    seen = one(
        await served.exchange(request("/x", "Transfer-Encoding: chunked", method="POST", body=body))
    ).json()
    assert seen["body"] == "abc"
    assert "X-Trailer" not in [name for name, _ in seen["headers"]]
