"""The request head as bytes and the origin it is sent to (pure: no sockets)."""

from __future__ import annotations

import pytest

from proxy.upstream.wire import framing, parse_origin, render_head


@pytest.mark.parametrize(
    ("url", "authority", "port"),
    [
        ("http://upstream", "upstream", 80),
        ("http://upstream:80", "upstream", 80),
        ("http://upstream:8081/", "upstream:8081", 8081),
        ("https://Upstream.Example", "upstream.example", 443),
        ("https://upstream.example:443", "upstream.example", 443),
        ("https://upstream.example:8443", "upstream.example:8443", 8443),
        ("http://[::1]:8081", "[::1]:8081", 8081),
    ],
)
def test_the_host_header_leaves_out_the_default_port(url: str, authority: str, port: int) -> None:
    origin = parse_origin(url)

    assert (origin.authority, origin.port) == (authority, port)


@pytest.mark.parametrize(
    "url", ["ftp://upstream", "http://", "http://upstream/prefix", "http://u:p@upstream", "http://h?q=1"]
)
def test_an_origin_is_scheme_host_and_port_only(url: str) -> None:
    with pytest.raises(ValueError, match="upstream URL"):
        parse_origin(url)


def test_the_head_carries_the_request_line_host_the_callers_headers_in_order_and_the_framing() -> None:
    head = render_head(
        "POST", "/api/images?size=2", "upstream:8081", [("X-B", "2"), ("X-A", "1"), ("X-B", "3")],
        framing("POST", b"12345", None),
    )  # fmt: skip

    assert head == (
        b"POST /api/images?size=2 HTTP/1.1\r\nHost: upstream:8081\r\nX-B: 2\r\nX-A: 1\r\nX-B: 3\r\n"
        b"Content-Length: 5\r\n\r\n"
    )


def test_hop_by_hop_framing_and_host_headers_of_the_caller_are_dropped() -> None:
    given = [
        ("connection", "keep-alive"), ("Keep-Alive", "timeout=5"), ("Transfer-Encoding", "chunked"),
        ("Content-Length", "99"), ("HOST", "evil"), ("TE", "trailers"), ("Upgrade", "websocket"),
        ("Proxy-Connection", "keep-alive"), ("Trailer", "X"), ("Expect", "100-continue"), ("X-Kept", "1"),
    ]  # fmt: skip

    head = render_head("GET", "/", "upstream", given, framing("GET", None, None))

    assert head == b"GET / HTTP/1.1\r\nHost: upstream\r\nX-Kept: 1\r\n\r\n"


@pytest.mark.parametrize(
    ("method", "body", "length", "line"),
    [
        ("GET", None, None, ""),
        ("HEAD", None, None, ""),
        ("POST", None, None, "Content-Length: 0\r\n"),
        ("DELETE", None, None, "Content-Length: 0\r\n"),
        ("PUT", b"", None, "Content-Length: 0\r\n"),
        ("POST", object(), None, "Transfer-Encoding: chunked\r\n"),
        ("POST", object(), 12, "Content-Length: 12\r\n"),
    ],
)
def test_framing_follows_the_body(method: str, body: object, length: int | None, line: str) -> None:
    assert framing(method, body, length) == line


@pytest.mark.parametrize(
    "headers", [[("X-Evil", "1\r\nX-Injected: 1")], [("X-Evil\r\nX-Injected", "1")], [("X-Evil", "1\n")]]
)
def test_a_line_break_in_a_header_is_refused(headers: list[tuple[str, str]]) -> None:
    with pytest.raises(ValueError, match="line break"):
        render_head("GET", "/", "upstream", headers, "")


def test_a_line_break_in_the_target_is_refused() -> None:
    with pytest.raises(ValueError, match="line break"):
        render_head("GET", "/ HTTP/1.1\r\nX-Injected: 1\r\n", "upstream", [], "")


def test_header_text_goes_out_as_the_bytes_the_public_listener_decoded() -> None:
    sent = b"\xc3\xa9-\xff"  # UTF-8 \u00e9 and a byte that is not UTF-8
    raw = sent.decode("latin-1")  # as the http1 server decodes every header byte

    head = render_head("GET", "/", "upstream", [("X-Name", raw)], "")

    assert b"X-Name: " + sent + b"\r\n" in head


def test_a_rendered_header_block_is_used_as_is_between_host_and_framing() -> None:
    head = render_head("PUT", "/x", "upstream", b"X-A: 1\r\nX-B: 2\r\n", "Content-Length: 3\r\n")

    assert head == b"PUT /x HTTP/1.1\r\nHost: upstream\r\nX-A: 1\r\nX-B: 2\r\nContent-Length: 3\r\n\r\n"


@pytest.mark.parametrize("block", [b"Content-Length: 3\r\n", b"X-A: 1\r\nhost: evil\r\n", b"X-A: 1"])
def test_a_rendered_block_with_framing_or_host_or_unterminated_is_refused(block: bytes) -> None:
    with pytest.raises(ValueError, match="block"):
        render_head("GET", "/", "upstream", block, "")


def test_a_body_and_a_different_declared_length_are_refused() -> None:
    with pytest.raises(ValueError, match="disagrees"):
        framing("POST", b"abc", 4)
