"""What the front door answers when aiohttp's HTTP parser refuses a request, and the parser's bounds (pure).

Owns parser_bounds() (the limits block as aiohttp's max_line_size / max_field_size / max_headers),
refusal() (the status, code and message for a parser exception: never the input echoed back) and
error_bytes() (a complete JSON error response for when there is no request to answer). Kept apart
from the http1 server (http1/refusals.py), which answers with them.
"""

from __future__ import annotations

import json

from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError, LineTooLong

from proxy.config.resilience import Limits

__all__ = ["error_bytes", "parser_bounds", "refusal"]

# Longest request line around a target of max_url_bytes: "OPTIONS " + target + " HTTP/1.1".
_REQUEST_LINE_SLACK = 32


def parser_bounds(limits: Limits) -> dict[str, int]:
    """aiohttp's parser limits for these limits; the line and field bounds always differ by >= 1 byte,
    so a LineTooLong says by its limit which one was crossed (414 vs 431)."""
    line = limits.max_url_bytes + _REQUEST_LINE_SLACK
    field = limits.max_header_bytes
    if field == line:
        line += 1
    return {"max_line_size": line, "max_field_size": field, "max_headers": limits.max_headers}


def error_bytes(status: int, reason: str, code: str, message: str) -> bytes:
    """A complete HTTP/1.1 response with the JSON error shape, for when there is no request to answer."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def refusal(exc: BaseException | None, status: int, bounds: dict[str, int]) -> tuple[int, str, str]:
    """(status, code, message) for what the parser refused; the message never echoes the input."""
    if isinstance(exc, LineTooLong):
        limit = exc.args[1] if len(exc.args) > 1 else None
        if limit == bounds["max_line_size"]:
            return 414, "uri_too_long", "the request target is longer than the proxy accepts"
        return 431, "header_too_large", "a request header line is longer than the proxy accepts"
    if isinstance(exc, HttpProcessingError):
        message = str(exc.message)
        if "Too many headers" in message:
            return 431, "too_many_headers", "the request has more header lines than the proxy accepts"
        if "Transfer-Encoding" in message and "Content-Length" in message:
            return 400, "conflicting_framing", "Content-Length and Transfer-Encoding must not be combined"
        if isinstance(exc, BadHttpMethod):
            return 400, "bad_request", "this is not an HTTP/1.x request the proxy understands"
        return 400, "bad_request", "the request is not well-formed HTTP/1.1"
    if status >= 500:
        return 500, "internal_error", "the proxy failed to handle this request"
    return status, "bad_request", "the request could not be handled"
