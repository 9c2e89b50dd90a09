"""What the server answers itself, before (or instead of) the handler: each refusal as a status, a code and
a message in the proxy's JSON error shape (pure).

Owns Refused (raised from the parser's callbacks, carried to the connection), the refusals the
connection makes with the live limits (414, 431, 413, 417, 505, 405, 400, 408, 503), and from_parser():
what llhttp refused. No message ever echoes the input: llhttp's own reason is only matched, never
sent. The bytes on the wire are error_bytes() (a complete response with `Connection: close`).
"""

from __future__ import annotations

import json
from http import HTTPStatus

from httptools import HttpParserError, HttpParserInvalidMethodError

from proxy.config.resilience import Limits

__all__ = [
    "BAD_TARGET",
    "BAD_VERSION",
    "CONNECT",
    "HEAD_TIMEOUT",
    "INTERNAL",
    "NO_HOST",
    "OLD_WEBSOCKET",
    "REPEATED_HEADER",
    "TOO_MANY_CONNECTIONS",
    "UPGRADE_BODY",
    "Refused",
    "body_too_large",
    "error_bytes",
    "expectation_failed",
    "from_parser",
    "header_too_large",
    "too_many_headers",
    "uri_too_long",
]  # fmt: skip


def error_bytes(status: int, reason: str, code: str, message: str) -> bytes:
    """A complete HTTP/1.1 response with the JSON error shape, for when there is no request to answer."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class Refused(Exception):
    """A request the server answers itself with a JSON error; the connection is closed after it."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(code)
        self.status, self.code, self.message = status, code, message

    def answer(self) -> bytes:
        return error_bytes(self.status, HTTPStatus(self.status).phrase, self.code, self.message)


BAD_VERSION = Refused(505, "http_version_not_supported", "only HTTP/1.0 and 1.1 are spoken here")
CONNECT = Refused(405, "method_not_allowed", "CONNECT is not supported: no tunnels here")
# Absolute-form and asterisk targets (`OPTIONS *` too): today's front door answers them 400 (the handler's
# invalid_path) or 404 (no route matches "*"); here they never reach the handler.
BAD_TARGET = Refused(400, "invalid_path", "the request target must be a path beginning with '/'")
NO_HOST = Refused(400, "bad_request", "an HTTP/1.1 request must carry one Host header")
REPEATED_HEADER = Refused(400, "bad_request", "a header that may appear once appears more than once")
OLD_WEBSOCKET = Refused(400, "bad_request", "the draft-76 WebSocket handshake is not supported")
UPGRADE_BODY = Refused(400, "bad_request", "an upgrade request cannot carry a chunked body")
HEAD_TIMEOUT = Refused(408, "request_timeout", "the request head did not arrive in time")
TOO_MANY_CONNECTIONS = Refused(503, "too_many_connections",
                               "the proxy has too many open connections; retry later")  # fmt: skip
INTERNAL = Refused(500, "internal_error", "the proxy failed to handle this request")
_MALFORMED = Refused(400, "bad_request", "the request is not well-formed HTTP/1.1")
_NOT_HTTP = Refused(400, "bad_request", "this is not an HTTP/1.x request the proxy understands")
_FRAMING = Refused(400, "conflicting_framing", "Content-Length and Transfer-Encoding must not be combined")


def uri_too_long(limits: Limits) -> Refused:
    return Refused(414, "uri_too_long", f"the request target is longer than {limits.max_url_bytes} bytes")


def too_many_headers(limits: Limits) -> Refused:
    return Refused(431, "too_many_headers", f"the request has more than {limits.max_headers} header lines")


def header_too_large(limits: Limits) -> Refused:
    return Refused(431, "header_too_large",
                   f"the request headers are larger than {limits.max_header_bytes} bytes")  # fmt: skip


def body_too_large(limits: Limits) -> Refused:
    return Refused(413, "payload_too_large",
                   f"the request body is larger than the limit of {limits.max_body_bytes} bytes")  # fmt: skip


def expectation_failed() -> Refused:
    return Refused(417, "expectation_failed", "only 'Expect: 100-continue' is understood")


def from_parser(exc: HttpParserError) -> Refused:
    """What llhttp refused (strict mode: no leniency is ever turned on), in words of our own."""
    if isinstance(exc, HttpParserInvalidMethodError):
        return _NOT_HTTP  # not a method llhttp knows, or not HTTP at all (TLS on the plain port...)
    reason = str(exc)
    if "Content-Length" in reason and "Transfer-Encoding" in reason:
        return _FRAMING
    return _MALFORMED
