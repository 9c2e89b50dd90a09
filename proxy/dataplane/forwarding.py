"""The upstream call: send one request, stream the answer back, and say what went wrong.

Owns what crosses the wire between the client and one upstream for one HTTP request (WebSockets are
in websocket.py; header hygiene in headers.py; the failures in errors.py and proxy.client). Owns no
routing and no breaker: the caller (failover.Caller) has decided where the request goes and books it.
Bodies are never buffered whole: the request body is handed to the client library as a stream and the
response body is copied chunk by chunk, with backpressure, to the client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Protocol

from multidict import CIMultiDict

from proxy.client import UpstreamError
from proxy.dataplane.bodies import bounded
from proxy.dataplane.errors import BodyTooLarge, Diverted
from proxy.dataplane.headers import response_headers
from proxy.dataplane.http1 import BodyStream, Request
from proxy.dataplane.trip import Trip
from proxy.upstream import Pool, Response, text_headers

__all__ = ["SMALL_BODY", "Tee", "forward"]

SMALL_BODY = 64 * 1024  # announced lengths up to this are read whole before answering (one write)


class Tee(Protocol):
    """Receives a copy of what one forwarded exchange streams (shadow.ShadowCall). Synchronous and
    cheap by contract: nothing here may make the client wait."""

    def request_chunk(self, chunk: bytes) -> None: ...
    def request_complete(self) -> None: ...
    def response_head(self, status: int, headers: CIMultiDict[str]) -> None: ...
    def response_chunk(self, chunk: bytes) -> None: ...
    def response_complete(self) -> None: ...


async def _teed(content: BodyStream, limit: int | None, tee: Tee) -> AsyncIterator[bytes]:
    """Stream the upload as bounded() does, handing each chunk to the tee; the end completes it."""
    async for chunk in bounded(content, limit):
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


async def forward(
    trip: Trip,
    pool: Pool,
    target: str,
    *,
    connect_timeout_s: float,
    read_timeout_s: float,
    max_body_bytes: int,
    tee: Tee | None = None,
    body: bytes | AsyncIterator[bytes] | None = None,
    body_length: int | None = None,
    divert: Callable[[int], bool] | None = None,
) -> None:
    """Send the trip's request (its outgoing headers) to `target` on the upstream's pool and write the
    answer to the trip's responder: a small one in one write, a larger one streamed.

    Raises BodyTooLarge, BodyReadTimeout or UpstreamError while nothing has been sent to the client yet;
    afterwards a failure cuts the client connection mid-body (the client sees a truncated response,
    never a complete-looking one) and is written into the trip as a failure of the upstream serving it.
    `tee` (shadow mode) gets a copy of the request and response as they stream; without one, nothing
    extra happens per chunk.
    `body` replaces the request's own stream (a buffered body, or the copy failover kept for a replay;
    `body_length` its size when it is a stream of known length); `divert(status)` returning True raises
    Diverted before anything is sent to the client (fallback on 5xx/404).
    """
    request, headers = trip.request, trip.headers
    assert headers is not None, "the outgoing headers are made before any upstream call"
    data, length = _payload(request, body, body_length, tee, max_body_bytes)
    upstream = await pool.request(
        request.method, target, list(headers.items()), data, content_length=length,
        connect_timeout_s=connect_timeout_s, read_timeout_s=read_timeout_s,
    )  # fmt: skip
    try:
        if divert is not None and divert(upstream.status):
            raise Diverted(upstream.status)  # the finally below closes the upstream response unread
        if tee is not None:
            tee.response_head(upstream.status, CIMultiDict(text_headers(upstream.headers)))
        headers_out = response_headers(upstream.headers, trip.request_id)
        size = upstream.content_length
        if size is not None and size <= SMALL_BODY and request.method != "HEAD":
            whole = await upstream.read(SMALL_BODY)  # a stall before the end is still a clean 504
            if tee is not None:
                tee.response_chunk(whole)
                tee.response_complete()
            await trip.responder.send(upstream.status, headers_out, whole)
        else:
            await trip.responder.start(upstream.status, headers_out, reason=upstream.reason)
            await _relay(trip, upstream, tee)
    finally:
        # A fully read response gives its connection back to the pool; anything else closes it, which
        # is also how a client that went away cancels the upstream request.
        upstream.release()


def _payload(
    request: Request, body: bytes | AsyncIterator[bytes] | None, body_length: int | None,
    tee: Tee | None, max_body_bytes: int,
) -> tuple[bytes | AsyncIterator[bytes] | None, int | None]:  # fmt: skip
    """What the pool sends, and its length when known: a body the caller holds, or the request's own
    stream (bounded; sent with the length the client declared, else chunked)."""
    if body is not None:
        length = len(body) if isinstance(body, bytes) else body_length
        return (body if tee is None else _teed_body(body, tee)), length
    if request.body_exists:
        length = request.content_length
        if length is not None and length > max_body_bytes:
            raise BodyTooLarge
        if tee is not None:
            return _teed(request.content, max_body_bytes if length is None else None, tee), length
        if length is not None:
            return request.content.iter_any(), length
        return bounded(request.content, max_body_bytes), None
    if tee is not None:
        tee.request_complete()
    return None, None


async def _relay(trip: Trip, upstream: Response, tee: Tee | None) -> None:
    """Copy the body chunk by chunk, with backpressure both ways (the pool stops reading the upstream
    while the responder waits for the client), then end the response."""
    responder = trip.responder
    chunks = upstream.chunks()
    while True:
        try:
            chunk = await anext(chunks, b"")
        except UpstreamError as error:
            trip.failed(trip.upstream, error.kind, "failed mid-body")
            responder.abort()
            return
        if not chunk:
            if tee is not None:
                tee.response_complete()
            await responder.end()
            return
        try:
            await responder.write(chunk)
        except ConnectionError:  # the client went away; releasing `upstream` unread closes it
            trip.client_gone = True
            return
        if tee is not None:
            tee.response_chunk(chunk)
