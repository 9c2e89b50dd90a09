"""A response head as bytes, and the framing of the body that follows it (pure).

Owns render_head(): the status line, the handler's headers minus those the server owns (Connection,
Keep-Alive, Proxy-Connection, Transfer-Encoding, TE, Trailer, Upgrade except on a 101, and
Content-Length, which is read as the framing the handler chose), then the framing and connection
headers the server decides. A head is rendered once per response, in one join. A header name or value
that would split the head (CR or LF) is refused with ValueError, never written. Owns no I/O.
"""

from __future__ import annotations

from http import HTTPStatus

__all__ = ["CHUNKED", "CONTINUE", "LENGTH", "NONE", "UNTIL_CLOSE", "Head", "render_head"]

NONE, LENGTH, CHUNKED, UNTIL_CLOSE = 0, 1, 2, 3  # body framings: none, Content-Length, chunked, close
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
Head = tuple[bytes, int, int, bool]  # the head, its framing, the body length it declares, keep-alive

_STATUS_LINES = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n" for s in HTTPStatus}
# The handler's headers the server owns; the length filter spares most names the lower() call.
_OWNED = frozenset({
    "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
    "content-length",
})  # fmt: skip
_OWNED_LENGTHS = frozenset(len(name) for name in _OWNED)


def _status_line(status: int, reason: str | None) -> str:
    if reason is None:
        line = _STATUS_LINES.get(status)
        if line is not None:
            return line
        reason = "Unknown"
    if not 100 <= status <= 999:
        raise ValueError(f"not an HTTP status: {status}")
    return f"HTTP/1.1 {status} {reason}\r\n"


def _length(value: str) -> int:
    digits = value.strip()
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError("the handler's Content-Length is not a number")
    return int(digits)


def render_head(
    status: int,
    headers: list[tuple[str, str]],
    reason: str | None,
    *,
    body_length: int | None,  # send(): the whole body's length; start(): None (streamed)
    head_only: bool,  # the request was HEAD: the head only, Content-Length kept as the handler gave it
    keep_alive: bool,  # what the connection allows; a close-delimited body turns it off
    http10: bool,
) -> Head:
    """(head bytes, framing, declared body length, keep-alive) for one response."""
    lines = [_status_line(status, reason)]
    declared: int | None = None
    switching = status == 101
    for name, value in headers:
        if len(name) in _OWNED_LENGTHS:
            lower = name.lower()
            if lower in _OWNED:
                if lower == "content-length":
                    declared = _length(value)
                elif switching and lower == "upgrade":
                    lines.append(f"{name}: {value}\r\n")
                continue
        lines.append(f"{name}: {value}\r\n")
    framing, length = NONE, 0
    if switching:
        lines.append("Connection: upgrade\r\n")
        keep_alive = False
    else:
        framing, length, keep_alive = _framing(status, lines, declared, body_length, head_only, keep_alive,
                                               http10)  # fmt: skip
    lines.append("\r\n")
    text = "".join(lines)
    if text.count("\n") != len(lines) or text.count("\r") != len(lines):
        raise ValueError("a response header name or value contains CR or LF")
    return text.encode("latin-1"), framing, length, keep_alive


def _framing(
    status: int,
    lines: list[str],
    declared: int | None,
    body_length: int | None,
    head_only: bool,
    keep_alive: bool,
    http10: bool,
) -> tuple[int, int, bool]:
    """Appends the framing and connection headers; returns (framing, body length, keep-alive)."""
    framing, length = NONE, 0
    if status < 200 or status == 204:
        pass  # never a body, never a Content-Length (RFC 9110 §8.6)
    elif head_only or status == 304:
        shown = declared
        if shown is None and head_only and body_length:
            shown = body_length  # send() of a HEAD answer with its body: the length it would have
        if shown is not None:
            lines.append(f"Content-Length: {shown}\r\n")
    elif body_length is not None:
        if declared is not None and declared != body_length:
            raise ValueError("the handler's Content-Length does not match the body it sent")
        framing, length = LENGTH, body_length
        lines.append(f"Content-Length: {body_length}\r\n")
    elif declared is not None:
        framing, length = LENGTH, declared
        lines.append(f"Content-Length: {declared}\r\n")
    elif http10:
        framing, keep_alive = UNTIL_CLOSE, False  # an HTTP/1.0 client cannot read chunks
    else:
        framing = CHUNKED
        lines.append("Transfer-Encoding: chunked\r\n")
    if not keep_alive:
        lines.append("Connection: close\r\n")
    elif http10:
        lines.append("Connection: keep-alive\r\n")
    return framing, length, keep_alive
