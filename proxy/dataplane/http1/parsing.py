"""The request side of one connection: llhttp's callbacks, the live limits, the requests they make.

Owns Parsing, the base of Http1Connection: one httptools (llhttp) parser per connection, strict (no
leniency flag is ever set), fed by data_received and calling back here. The limits are read once per
request from the live `limits` block and counted in the callbacks, where llhttp counts nothing: the
target (414), header lines and their bytes (431), a declared body (413, before a byte of it is read),
a chunked body as it arrives (BodyTooLarge on its stream), and the bytes of a line still being read
(a single endless header or trailer line cannot grow memory past the limits plus one read). A head the
server answers itself (505, 405, 400, 417, 413) raises Refused out of the parser; the connection
answers it in turn. Owns nothing of the connection's lifecycle (connection.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from httptools import HttpRequestParser

from proxy.config.resilience import Limits
from proxy.dataplane.errors import BodyTooLarge
from proxy.dataplane.http1 import refusals
from proxy.dataplane.http1.body import EMPTY, BodyStream
from proxy.dataplane.http1.refusals import Refused
from proxy.dataplane.http1.request import Request

__all__ = ["Parsing", "Stop"]

# aiohttp's parser refuses a second line of these (llhttp itself only a second Content-Length).
_SINGLETONS = frozenset({
    b"content-length", b"content-location", b"content-range", b"content-type", b"etag", b"host",
    b"max-forwards", b"server", b"transfer-encoding", b"user-agent",
})  # fmt: skip
_LOOKED_AT = _SINGLETONS | {b"expect", b"sec-websocket-key1"}
_LOOKED_AT_LENGTHS = frozenset(len(name) for name in _LOOKED_AT)
_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")}
_VERSIONS = ("1.1", "1.0")
_LINE_SLACK = 1024  # bytes a line still being read may take beyond the limits before it is refused


class Stop(Exception):
    """Raised out of a callback to stop llhttp where the connection stops reading (a failed body)."""


class Parsing(asyncio.Protocol):
    __slots__ = (
        "_cl", "_expect", "_header_bytes", "_host", "_in_head", "_incomplete", "_keep_msg", "_limits",
        "_limits_of", "_line_cap", "_manual_left", "_parser", "_parser_done", "_peer", "_quiet", "_raw",
        "_receiving", "_refusal", "_seen", "_te", "_trailers", "_url", "loop",
    )  # fmt: skip

    def __init__(self, limits: Callable[[], Limits]) -> None:
        self.loop = asyncio.get_running_loop()
        self._limits_of = limits  # the live limits block, read once per request
        self._limits = limits()
        self._parser = HttpRequestParser(self)  # reused for every request of the connection
        self._peer: tuple[str | None, int | None] = (None, None)
        self._parser_done = False  # nothing more is parsed: after a last request, a refusal, an upgrade
        self._keep_msg = True
        self._receiving: BodyStream | None = None  # the body llhttp is reading now
        self._incomplete: Request | None = None  # its head parsed, its message not complete yet
        self._manual_left = 0  # an upgrade request's Content-Length body, counted here (llhttp skips it)
        self._quiet = 0  # bytes fed since the last callback: a line still being read
        self._refusal: Refused | None = None
        self._trailers = 0
        self.on_message_begin()
        self._in_head = False  # a head has begun and is not complete

    # Hooks of the connection
    def _dispatch(self, request: Request) -> None:
        raise NotImplementedError

    def _body_begins(self, stream: BodyStream) -> None:
        raise NotImplementedError

    def _fail_body(self, stream: BodyStream, exc: Exception) -> None:
        raise NotImplementedError

    # What a body stream asks of its connection (body.BodyOwner)
    def body_full(self, stream: BodyStream) -> None:
        raise NotImplementedError

    def body_drained(self, stream: BodyStream) -> None:
        raise NotImplementedError

    def continue_wanted(self, stream: BodyStream) -> None:
        raise NotImplementedError

    def _refuse(self, refused: Refused) -> Refused:
        self._refusal = refused
        return refused

    # llhttp's callbacks
    def on_message_begin(self) -> None:
        self._limits = limits = self._limits_of()
        self._line_cap = max(limits.max_header_bytes, limits.max_url_bytes) + _LINE_SLACK
        self._url = b""
        self._raw: list[tuple[bytes, bytes]] = []
        self._header_bytes = 0
        self._seen: set[bytes] | None = None
        self._cl: int | None = None
        self._te = self._host = False
        self._expect: bytes | None = None
        self._in_head = True
        self._quiet = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._quiet = 0
        if len(self._url) > self._limits.max_url_bytes:
            raise self._refuse(refusals.uri_too_long(self._limits))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._quiet = 0
        if not self._in_head:
            self._trailer()  # trailers are counted, never kept
            return
        value = value.rstrip(b" \t")  # llhttp strips the whitespace before a value, not after it
        raw = self._raw
        raw.append((name, value))
        self._header_bytes += len(name) + len(value) + 4  # "name: value\r\n"
        limits = self._limits
        if len(raw) > limits.max_headers:
            raise self._refuse(refusals.too_many_headers(limits))
        if self._header_bytes > limits.max_header_bytes:
            raise self._refuse(refusals.header_too_large(limits))
        if len(name) in _LOOKED_AT_LENGTHS:
            lower = name.lower()
            if lower in _LOOKED_AT:
                self._looked_at(lower, value)

    def _looked_at(self, lower: bytes, value: bytes) -> None:
        if lower == b"expect":
            self._expect = value
            return
        if lower == b"sec-websocket-key1":  # draft-76 WebSocket: 8 bytes of body nothing declares
            raise self._refuse(refusals.OLD_WEBSOCKET)
        seen = self._seen
        if seen is None:
            self._seen = seen = set()
        elif lower in seen:
            raise self._refuse(refusals.REPEATED_HEADER)
        seen.add(lower)
        if lower == b"content-length":
            self._cl = int(value)  # llhttp has checked it: digits only
        elif lower == b"transfer-encoding":
            self._te = True  # llhttp has checked it: chunked, last (it refuses any other request coding)
        elif lower == b"host":
            self._host = True

    def _trailer(self) -> None:
        self._trailers += 1
        stream = self._receiving
        if self._trailers > self._limits.max_headers and stream is not None:
            self._fail_body(stream, BodyTooLarge())
            raise Stop

    def on_headers_complete(self) -> None:
        self._in_head = False
        parser, limits, length = self._parser, self._limits, self._cl
        raw_method = parser.get_method()
        method = _METHODS.get(raw_method) or raw_method.decode("ascii")
        version = parser.get_http_version()
        target = self._url.decode("latin-1")  # llhttp admits visible ASCII only
        self._check(method, version, target)
        expecting = self._expect is not None and version == "1.1"  # HTTP/1.0 cannot expect (RFC 9110 §10.1.1)
        if expecting and (self._expect or b"").lower() != b"100-continue":
            raise self._refuse(refusals.expectation_failed())
        if length is not None and length > limits.max_body_bytes:
            raise self._refuse(refusals.body_too_large(limits))  # before a byte of it is read, without a 100
        upgrade, chunked = parser.should_upgrade(), self._te
        self._keep_msg = parser.should_keep_alive()
        self._trailers = 0
        content = EMPTY
        if chunked or length:
            if upgrade and chunked:
                raise self._refuse(refusals.UPGRADE_BODY)
            content = BodyStream(self, expecting=expecting, limit=limits.max_body_bytes if chunked else None)
            self._receiving = content
            self._manual_left = (length or 0) if upgrade else 0
        request = Request(
            method, target, version, self._raw, self._peer, keep_alive=self._keep_msg, content_length=length,
            chunked=chunked, upgrade=upgrade, expect_continue=expecting and content is not EMPTY,
            content=content,
        )  # fmt: skip
        if content is not EMPTY and not expecting:
            self._body_begins(content)
        self._incomplete = request
        self._dispatch(request)

    def _check(self, method: str, version: str, target: str) -> None:
        if version not in _VERSIONS:
            raise self._refuse(refusals.BAD_VERSION)  # llhttp passes 0.9 and 2.0 on; others it refuses itself
        if method == "CONNECT":
            raise self._refuse(refusals.CONNECT)
        if target[:1] != "/":
            raise self._refuse(refusals.BAD_TARGET)  # absolute-form, asterisk-form: only paths are routed
        if not self._host and version == "1.1":
            raise self._refuse(refusals.NO_HOST)  # RFC 9112 §3.2: a 400

    def on_body(self, body: bytes) -> None:
        self._quiet = 0
        stream = self._receiving
        if stream is not None and not stream.feed(body):
            self._fail_body(stream, BodyTooLarge())
            raise Stop

    def on_message_complete(self) -> None:
        self._incomplete = None
        stream = self._receiving
        if stream is not None and not self._manual_left:
            self._receiving = None
            stream.feed_eof()
        if not self._keep_msg:
            self._parser_done = True  # llhttp refuses anything after it: the rest is not read

    def _feed_manual(self, data: bytes) -> bytes:
        """An upgrade request's Content-Length body (llhttp hands everything after the head over as the
        new protocol); returns what follows it."""
        left = self._manual_left
        body, rest = data[:left], data[left:]
        self._manual_left = left - len(body)
        stream = self._receiving
        if stream is not None:
            if body:
                stream.feed(body)  # counted against nothing: its declared length was checked
            if not self._manual_left:
                self._receiving = None
                stream.feed_eof()
        return rest
