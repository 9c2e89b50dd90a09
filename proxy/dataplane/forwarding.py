"""The upstream call: header hygiene, streaming both ways, and turning failures into 502/504/413.

Owns what crosses the wire between the client and one upstream for one HTTP request (WebSockets are
in websocket.py). Owns no routing: the caller has already decided where the request goes.
Bodies are never buffered whole: the request body is handed to the client library as a stream and the
response body is copied chunk by chunk, with backpressure, to the client.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Protocol

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from strangler_common.shadowmark import INTERNAL_HEADERS

HOP_BY_HOP = (
    "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection",
    "TE", "Trailer", "Transfer-Encoding", "Upgrade",
)  # fmt: skip
# Request-only: the client library sets Host from the upstream URL; the proxy has already answered a
# `100-continue` itself; the forwarding headers are rebuilt below; a client never speaks for the proxy
# (INTERNAL_HEADERS: every header the proxy uses to talk to its upstreams, in any case, every copy).
_REQUEST_DROP = (
    *HOP_BY_HOP, "Host", "Expect", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host",
    *INTERNAL_HEADERS,
)  # fmt: skip
SMALL_BODY = 64 * 1024  # announced lengths up to this are read whole before answering (one write)

Networks = Sequence[IPv4Network | IPv6Network]


class BodyTooLarge(Exception):
    pass


class BodyReadTimeout(Exception):
    """The client paused its request body longer than limits.client_read_timeout_s (408). Set on the
    request's stream by frontdoor.py. Not a TimeoutError: that would read as the upstream timing out."""


class Diverted(Exception):
    """forward()'s `divert` claimed this status (fallback): nothing of the response reached the client."""

    def __init__(self, status: int) -> None:
        super().__init__(f"the upstream answered {status}")
        self.status = status


class UpstreamError(Exception):
    """The upstream failed before the response headers reached the client."""

    def __init__(self, kind: str, *, timeout: bool, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind  # connect | timeout | reset | protocol (the metric's label)
        self.timeout = timeout

    @property
    def status(self) -> int:
        return 504 if self.timeout else 502

    @property
    def code(self) -> str:
        return "upstream_timeout" if self.timeout else "upstream_unreachable"


class Tee(Protocol):
    """Receives a copy of what one forwarded exchange streams (shadow.ShadowCall). Synchronous and
    cheap by contract: nothing here may make the client wait."""

    def request_chunk(self, chunk: bytes) -> None: ...
    def request_complete(self) -> None: ...
    def response_head(self, status: int, headers: CIMultiDictProxy[str]) -> None: ...
    def response_chunk(self, chunk: bytes) -> None: ...
    def response_complete(self) -> None: ...


@dataclass(slots=True)
class Exchange:
    """What the handler learns from one forwarded request."""

    stream_error: str | None = None  # an upstream error kind after the headers were already sent
    client_gone: bool = False  # the client disconnected while the body was being sent


def upstream_url(base: str, path: str, query: str) -> URL:
    """Base URL + normalized path + the query exactly as received: nothing is decoded or re-encoded."""
    target = base.rstrip("/") + path
    if query:
        target += "?" + query
    return URL(target, encoded=True)


def _connection_tokens(headers: CIMultiDictProxy[str]) -> list[str]:
    return [t.strip() for v in headers.getall("Connection", ()) for t in v.split(",") if t.strip()]


def _trusted(peer: str | None, trusted: Networks) -> bool:
    if not trusted or peer is None:
        return False
    try:
        address = ip_address(peer)
    except ValueError:
        return False
    return any(address in network for network in trusted)


def request_headers(request: web.BaseRequest, request_id: str, trusted: Networks) -> CIMultiDict[str]:
    incoming = request.headers
    out = CIMultiDict(incoming)
    for name in _REQUEST_DROP:
        out.popall(name, None)
    for name in _connection_tokens(incoming):
        out.popall(name, None)
    peer = request.remote
    prior = incoming.getall("X-Forwarded-For", ())
    chain = [*prior, peer] if peer else list(prior)
    if chain:
        out["X-Forwarded-For"] = ", ".join(chain)
    believed = ("X-Forwarded-Proto" in incoming or "X-Forwarded-Host" in incoming) and _trusted(peer, trusted)
    proto = incoming.get("X-Forwarded-Proto") if believed else None
    host = incoming.get("X-Forwarded-Host") if believed else None
    out["X-Forwarded-Proto"] = proto or request.scheme
    out["X-Forwarded-Host"] = host or request.host
    out["X-Request-ID"] = request_id
    return out


def response_headers(upstream: CIMultiDictProxy[str], request_id: str) -> CIMultiDict[str]:
    out = CIMultiDict(upstream)
    for name in HOP_BY_HOP:
        out.popall(name, None)
    for name in _connection_tokens(upstream):
        out.popall(name, None)
    out.setdefault("X-Request-ID", request_id)
    return out


async def _counted(content: aiohttp.StreamReader, limit: int) -> AsyncIterator[bytes]:
    """Stream an upload of unknown length, refusing it as soon as it passes the limit."""
    total = 0
    async for chunk in content.iter_any():
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge
        yield chunk


async def _teed(content: aiohttp.StreamReader, limit: int | None, tee: Tee) -> AsyncIterator[bytes]:
    """Stream the upload as _counted does, handing each chunk to the tee; the end completes it."""
    total = 0
    async for chunk in content.iter_any():
        total += len(chunk)
        if limit is not None and total > limit:
            raise BodyTooLarge
        tee.request_chunk(chunk)
        yield chunk
    tee.request_complete()


async def _teed_body(body: bytes | AsyncIterator[bytes], tee: Tee) -> AsyncIterator[bytes]:
    """A body the proxy already holds (buffered), handed to the tee as it is sent."""
    if isinstance(body, bytes):
        tee.request_chunk(body)
        tee.request_complete()
        yield body
        return
    async for chunk in body:
        tee.request_chunk(chunk)
        yield chunk
    tee.request_complete()


def classify(exc: BaseException) -> UpstreamError:
    if isinstance(exc, asyncio.TimeoutError):  # includes aiohttp's connect and socket-read timeouts
        return UpstreamError("timeout", timeout=True, detail=str(exc) or type(exc).__name__)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamError("connect", timeout=False, detail=str(exc))
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError | ConnectionError):
        return UpstreamError("reset", timeout=False, detail=str(exc) or type(exc).__name__)
    return UpstreamError("protocol", timeout=False, detail=str(exc) or type(exc).__name__)


async def forward(
    request: web.Request,
    session: aiohttp.ClientSession,
    url: URL,
    headers: CIMultiDict[str],
    *,
    timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 - the client library's per-request timeouts
    max_body_bytes: int,
    request_id: str,
    exchange: Exchange,
    tee: Tee | None = None,
    body: bytes | AsyncIterator[bytes] | None = None,
    divert: Callable[[int], bool] | None = None,
) -> web.StreamResponse:
    """Send the request upstream and stream the answer back.

    Raises BodyTooLarge or UpstreamError while nothing has been sent to the client yet; afterwards a
    failure closes the client connection mid-body (the client sees a truncated response, never a
    complete-looking one) and is reported through `exchange.stream_error`.
    `tee` (shadow mode) gets a copy of the request and response as they stream; without one, nothing
    extra happens per chunk.
    `body` replaces the request's own stream (failover.read_body kept it for a replay); `divert(status)`
    returning True raises Diverted before anything is sent to the client (fallback on 5xx/404).
    """
    data: object = None
    if body is not None:
        data = body if tee is None else _teed_body(body, tee)
    elif request.body_exists:
        length = request.content_length
        if length is not None and length > max_body_bytes:
            raise BodyTooLarge
        if tee is not None:
            data = _teed(request.content, max_body_bytes if length is None else None, tee)
        else:
            data = request.content if length is not None else _counted(request.content, max_body_bytes)
    elif tee is not None:
        tee.request_complete()
    try:
        upstream = await session.request(
            request.method,
            url,
            headers=headers,
            data=data,
            allow_redirects=False,
            timeout=timeout,
        )
    except BodyTooLarge:
        raise
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        if isinstance(exc.__cause__, BodyTooLarge) or isinstance(exc.__context__, BodyTooLarge):
            raise BodyTooLarge from exc
        if isinstance(exc.__cause__, BodyReadTimeout) or isinstance(exc.__context__, BodyReadTimeout):
            raise BodyReadTimeout from exc
        raise classify(exc) from exc
    completed = False
    try:
        if divert is not None and divert(upstream.status):
            raise Diverted(upstream.status)  # the finally below closes the upstream response unread
        headers_out = response_headers(upstream.headers, request_id)
        length = upstream.content_length
        if length is not None and length <= SMALL_BODY and request.method != "HEAD":
            # A small body of announced length is read first and sent in one write with the headers:
            # memory stays bounded by SMALL_BODY, and a stall before the end is still a clean 504.
            try:
                body = await upstream.read()
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise classify(exc) from exc
            completed = True
            if tee is not None:
                tee.response_head(upstream.status, upstream.headers)
                tee.response_chunk(body)
                tee.response_complete()
            return web.Response(
                status=upstream.status, reason=upstream.reason, headers=headers_out, body=body
            )
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason, headers=headers_out)
        await response.prepare(request)
        if tee is not None:
            tee.response_head(upstream.status, upstream.headers)
        content = upstream.content
        while True:
            try:
                chunk = await content.readany()
            except (TimeoutError, aiohttp.ClientError) as exc:
                exchange.stream_error = classify(exc).kind
                _abort(request)
                break
            if not chunk:
                completed = True
                if tee is not None:
                    tee.response_complete()
                break
            try:
                await response.write(chunk)
            except ConnectionError:  # the client went away; closing `upstream` below cancels the rest
                exchange.client_gone = True
                break
            if tee is not None:
                tee.response_chunk(chunk)
        return response
    finally:
        # A fully read response gives its connection back to the pool; anything else closes it, which
        # is also how a client that went away cancels the upstream request.
        if completed:
            upstream.release()
        else:
            upstream.close()


def _abort(request: web.BaseRequest) -> None:
    """Close the client connection so a half-sent body cannot look complete."""
    transport = request.transport
    if transport is not None:
        transport.close()
