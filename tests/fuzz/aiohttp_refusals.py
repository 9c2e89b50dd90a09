"""What the old aiohttp front door (aiohttp_front_door.py, the differential fuzz's reference) answered when
aiohttp's HTTP parser refused a request, and the parser's bounds (pure).

Owns request_refusal() (the old handler's live check of the target and header limits, which the http1 server
now makes itself), parser_bounds() (the limits block as aiohttp's max_line_size, max_field_size and
max_headers) and refusal() (the status, code and message for a parser exception: never the input echoed
back). The bytes on the wire are the http1 server's error_bytes().
"""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError, LineTooLong

from proxy.config.resilience import Limits

__all__ = ["Refusal", "parser_bounds", "refusal", "request_refusal"]

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


Refusal = tuple[int, str, str]  # status, error code, message


def request_refusal(
    target: str, raw_headers: Sequence[tuple[bytes, bytes]], limits: Limits
) -> Refusal | None:
    """None when the request is within limits; otherwise the JSON error to answer with."""
    if len(target) > limits.max_url_bytes:
        return 414, "uri_too_long", f"the request target is longer than {limits.max_url_bytes} bytes"
    if len(raw_headers) > limits.max_headers:
        return 431, "too_many_headers", f"the request has more than {limits.max_headers} header lines"
    size = 0
    for name, value in raw_headers:
        size += len(name) + len(value) + 4  # "name: value\r\n"
    if size > limits.max_header_bytes:
        return 431, "header_too_large", f"the request headers are larger than {limits.max_header_bytes} bytes"
    return None
