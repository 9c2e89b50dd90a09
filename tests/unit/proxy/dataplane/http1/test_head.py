"""render_head(): the framing and connection headers the server decides (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.dataplane.http1.head import CHUNKED, LENGTH, NONE, UNTIL_CLOSE, render_head


def head(
    status: int = 200, headers: list[tuple[str, str]] | None = None, **kwargs: object
) -> tuple[bytes, int, int, bool]:
    options: dict[str, object] = {
        "body_length": None,
        "head_only": False,
        "keep_alive": True,
        "http10": False,
    }
    options.update(kwargs)
    return render_head(status, headers or [], None, **options)  # type: ignore[arg-type]


def test_the_framing_is_the_servers_choice() -> None:
    assert head(body_length=2)[1:] == (LENGTH, 2, True)
    assert head()[1:] == (CHUNKED, 0, True)
    assert head(http10=True)[1:] == (UNTIL_CLOSE, 0, False)
    assert head(headers=[("content-LENGTH", " 42 ")])[1:] == (LENGTH, 42, True)
    assert head(204)[1] == NONE
    assert head(head_only=True)[1] == NONE


def test_a_content_length_that_disagrees_with_the_body_or_is_not_a_number_is_refused() -> None:
    with pytest.raises(ValueError, match="does not match"):
        head(headers=[("Content-Length", "3")], body_length=2)
    for bad in ("+3", "3, 3", "0x3", "", "³"):
        with pytest.raises(ValueError, match="not a number"):
            head(headers=[("Content-Length", bad)])


def test_connection_headers_follow_the_connection_not_the_handler() -> None:
    assert b"Connection" not in head(headers=[("Connection", "close")], body_length=0)[0]
    assert b"\r\nConnection: close\r\n" in head(keep_alive=False, body_length=0)[0]
    assert b"\r\nConnection: keep-alive\r\n" in head(http10=True, body_length=0)[0]
    switching = head(101, [("Upgrade", "websocket"), ("Sec-WebSocket-Accept", "x")])[0]
    assert b"\r\nUpgrade: websocket\r\n" in switching
    assert b"\r\nConnection: upgrade\r\n" in switching


@given(st.text(max_size=20), st.text(max_size=20))
def test_no_header_can_add_a_line_to_the_head(name: str, value: str) -> None:
    try:
        rendered = head(headers=[(name or "X", value)], body_length=0)[0]
    except (ValueError, UnicodeEncodeError):
        return
    assert rendered.count(b"\r\n") == rendered.count(b"\n")
    lines = rendered.split(b"\r\n")
    assert len(lines) <= 5  # status, the header (unless the server owns it), Content-Length, the end
