"""forward(): one request sent upstream and its answer streamed back, between real sockets on loopback.

A front server whose handler builds the Trip and calls forward() stands in for the proxy's handler; the
upstreams are real aiohttp servers (or a raw one, to die mid-body)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDictProxy

from proxy.client import UpstreamError
from proxy.dataplane.errors import BodyTooLarge, Diverted
from proxy.dataplane.forwarding import SMALL_BODY, Tee, forward
from proxy.dataplane.headers import request_headers
from proxy.dataplane.http1 import Request, Responder
from proxy.dataplane.trip import Trip
from proxy.upstream import Pool
from tests.integration.proxy.conftest import WAIT_S, url_of
from tests.unit.proxy.dataplane.fronts import served

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
ClientFactory = Callable[[web.Application], Awaitable[TestClient[web.Request, web.Application]]]
REQUEST_ID = "req-7"
LARGE = bytes(range(256)) * (3 * SMALL_BODY // 256)  # well over SMALL_BODY: streamed, not read whole
# an upstream's hop-by-hop headers, and one it names in Connection: none of them may reach the client
HOP_BY_HOP_OUT = {
    "Connection": "X-Hop", "X-Hop": "1", "Keep-Alive": "timeout=5", "Proxy-Authenticate": "Basic"
}  # fmt: skip


@dataclass
class Upstream:
    """What the upstream saw: one entry per request (method, path, X-Request-ID, body length)."""

    seen: list[tuple[str, str, str | None, int]] = field(default_factory=list)


def upstream_app(upstream: Upstream) -> web.Application:
    async def record(request: web.Request) -> bytes:
        body = await request.read()
        upstream.seen.append((request.method, request.path, request.headers.get("X-Request-ID"), len(body)))
        return body

    async def small(request: web.Request) -> web.StreamResponse:
        await record(request)
        return web.Response(body=b"small answer", headers={"X-Kept": "yes", **HOP_BY_HOP_OUT})

    async def large(request: web.Request) -> web.StreamResponse:
        await record(request)
        return web.Response(body=LARGE, content_type="application/octet-stream")

    async def chunked(request: web.Request) -> web.StreamResponse:
        await record(request)
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for part in (b"one;", b"two;", b"three"):
            await response.write(part)
        await response.write_eof()
        return response

    async def echo(request: web.Request) -> web.StreamResponse:
        return web.Response(body=await record(request), headers={"X-Echo": "1"})

    async def status(request: web.Request) -> web.StreamResponse:
        await record(request)
        return web.Response(status=int(request.match_info["code"]), text="upstream's own answer")

    app = web.Application()
    app.router.add_get("/small", small)
    app.router.add_get("/large", large)
    app.router.add_get("/chunked", chunked)
    app.router.add_post("/echo", echo)
    app.router.add_get("/status/{code}", status)
    return app


class Recording:
    """The handler's Responder, recording how the answer was written: in one write or streamed."""

    def __init__(self, responder: Responder, front: Front) -> None:
        self._responder, self._front = responder, front

    def __getattr__(self, name: str) -> Any:
        return getattr(self._responder, name)

    async def send(self, status: int, headers: list[tuple[str, str]], body: bytes = b"") -> None:
        self._front.returned.append(("whole", dict(headers)))
        await self._responder.send(status, headers, body)

    async def start(self, status: int, headers: list[tuple[str, str]], *, reason: str | None = None) -> None:
        self._front.returned.append(("streamed", dict(headers)))
        await self._responder.start(status, headers, reason=reason)


@dataclass
class Front:
    """The stand-in for the proxy's handler, and what it saw of each request."""

    client: aiohttp.ClientSession = field(init=False)
    trips: list[Trip] = field(default_factory=list)
    returned: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # (how, headers) per answer
    raised: list[Exception] = field(default_factory=list)
    sent_before_raise: list[bool] = field(default_factory=list)  # had the answer started when it raised?


FrontFactory = Callable[..., Awaitable[Front]]


@pytest.fixture
async def make_front() -> AsyncIterator[FrontFactory]:
    pools: list[Pool] = []
    stack = AsyncExitStack()

    async def make(
        base: str, *, max_body_bytes: int = 10 * 1024 * 1024, tee: Tee | None = None,
        divert: Callable[[int], bool] | None = None,
    ) -> Front:  # fmt: skip
        front = Front()
        pool = Pool(base)
        pools.append(pool)

        async def handle(request: Request, responder: Responder) -> None:
            recording: Any = Recording(responder, front)
            trip = Trip(request, recording, REQUEST_ID, request.path, request.query, upstream="legacy",
                        role="default")  # fmt: skip
            trip.headers = request_headers(request, trip.request_id, ())
            front.trips.append(trip)
            try:
                await forward(
                    trip, pool, request.target, connect_timeout_s=2.0, read_timeout_s=5.0,
                    max_body_bytes=max_body_bytes, tee=tee, divert=divert,
                )  # fmt: skip
            except (BodyTooLarge, Diverted, UpstreamError) as exc:
                front.raised.append(exc)
                front.sent_before_raise.append(responder.started)
                await responder.send(299, [], type(exc).__name__.encode())  # answered by the front itself

        front.client = await stack.enter_async_context(served(handle))
        return front

    yield make
    await stack.aclose()
    for pool in pools:
        await pool.close()


@pytest.fixture
async def upstream(aiohttp_server: ServerFactory) -> tuple[str, Upstream]:
    recorded = Upstream()
    return url_of(await aiohttp_server(upstream_app(recorded))), recorded


async def test_a_small_answer_is_sent_whole_in_one_response_with_hop_by_hop_headers_dropped(
    make_front: FrontFactory, upstream: tuple[str, Upstream]
) -> None:
    base, recorded = upstream
    front = await make_front(base)

    response = await front.client.get("/small", headers={"Keep-Alive": "timeout=9", "X-Client": "1"})

    assert (response.status, await response.read()) == (200, b"small answer")
    how, returned = front.returned[0]
    assert how == "whole"  # read whole, then one write of head and body
    assert response.headers["Content-Length"] == str(len(b"small answer"))
    assert response.headers["X-Kept"] == "yes"
    assert response.headers["X-Request-ID"] == REQUEST_ID
    assert [name for name in HOP_BY_HOP_OUT if name in returned] == []
    assert [name for name in ("X-Hop", "Keep-Alive", "Proxy-Authenticate") if name in response.headers] == []
    assert recorded.seen == [("GET", "/small", REQUEST_ID, 0)]
    assert front.trips[0].failures is None


async def test_a_large_answer_is_streamed_through_byte_for_byte(
    make_front: FrontFactory, upstream: tuple[str, Upstream]
) -> None:
    base, _ = upstream
    front = await make_front(base)

    response = await front.client.get("/large")

    assert await response.read() == LARGE
    assert front.returned[0][0] == "streamed"  # streamed, never held whole
    assert response.headers["X-Request-ID"] == REQUEST_ID
    assert front.trips[0].failures is None


async def test_an_answer_of_unknown_length_is_streamed_as_it_comes(
    make_front: FrontFactory, upstream: tuple[str, Upstream]
) -> None:
    base, _ = upstream
    front = await make_front(base)

    response = await front.client.get("/chunked")

    assert await response.read() == b"one;two;three"
    assert front.returned[0][0] == "streamed"
    assert "Content-Length" not in response.headers


async def test_a_diverted_status_raises_before_anything_reaches_the_client(
    make_front: FrontFactory, upstream: tuple[str, Upstream]
) -> None:
    base, recorded = upstream
    statuses: list[int] = []

    def divert(status: int) -> bool:
        statuses.append(status)
        return status >= 500

    front = await make_front(base, divert=divert)

    diverted = await front.client.get("/status/503")
    passed = await front.client.get("/status/404")

    assert (diverted.status, await diverted.text()) == (299, "Diverted")  # the front still answers freely
    (raised,) = front.raised
    assert isinstance(raised, Diverted)
    assert raised.status == 503
    assert front.sent_before_raise == [False]
    assert (passed.status, await passed.text()) == (404, "upstream's own answer")
    assert statuses == [503, 404]
    assert len(recorded.seen) == 2


@pytest.fixture
async def dying_upstream() -> AsyncIterator[str]:
    """Announces a large body, sends a little of it and hangs up."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (4 * SMALL_BODY) + b"x" * 1000)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


async def test_an_upstream_that_dies_mid_body_cuts_the_client_off_and_is_recorded_once(
    make_front: FrontFactory, dying_upstream: str
) -> None:
    front = await make_front(dying_upstream)

    # bounded: were the client not cut off, it would wait for the rest of the announced body
    response = await front.client.get("/download", timeout=aiohttp.ClientTimeout(total=WAIT_S))

    assert response.status == 200  # the head was already out
    with pytest.raises(aiohttp.ClientPayloadError):
        await response.read()  # a truncated body, never a complete-looking one
    # a body cut short after the head is a protocol failure (as aiohttp's payload error was)
    assert front.trips[0].failures == [("legacy", "protocol", "failed mid-body")]
    assert front.trips[0].client_gone is False


async def test_a_declared_body_over_the_limit_is_refused_before_the_upstream_is_called(
    make_front: FrontFactory, upstream: tuple[str, Upstream]
) -> None:
    base, recorded = upstream
    front = await make_front(base, max_body_bytes=10)

    response = await front.client.post("/echo", data=b"x" * 11)

    assert (response.status, await response.text()) == (299, "BodyTooLarge")
    assert front.sent_before_raise == [False]
    assert recorded.seen == []


async def test_a_body_of_unknown_length_is_refused_as_soon_as_it_passes_the_limit(
    make_front: FrontFactory, upstream: tuple[str, Upstream]
) -> None:
    base, _ = upstream
    front = await make_front(base, max_body_bytes=10)

    async def upload() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"x" * 6

    response = await front.client.post("/echo", data=upload())

    assert (response.status, await response.text()) == (299, "BodyTooLarge")
    assert isinstance(front.raised[0], BodyTooLarge)


async def test_a_body_within_the_limit_reaches_the_upstream_whole(
    make_front: FrontFactory, upstream: tuple[str, Upstream]
) -> None:
    base, recorded = upstream
    front = await make_front(base, max_body_bytes=10)

    response = await front.client.post("/echo", data=b"x" * 10)

    assert await response.read() == b"x" * 10
    assert recorded.seen == [("POST", "/echo", REQUEST_ID, 10)]


@dataclass
class RecordingTee:
    """A tee that writes down what it is handed, in order."""

    events: list[str] = field(default_factory=list)
    request: list[bytes] = field(default_factory=list)
    response: list[bytes] = field(default_factory=list)
    headers: list[CIMultiDictProxy[str]] = field(default_factory=list)

    def request_chunk(self, chunk: bytes) -> None:
        self.request.append(chunk)

    def request_complete(self) -> None:
        self.events.append("request complete")

    def response_head(self, status: int, headers: CIMultiDictProxy[str]) -> None:
        self.events.append(f"response head {status}")
        self.headers.append(headers)

    def response_chunk(self, chunk: bytes) -> None:
        self.response.append(chunk)

    def response_complete(self) -> None:
        self.events.append("response complete")


@pytest.mark.parametrize(
    "payload", [pytest.param(b"a small upload", id="small-whole"), pytest.param(LARGE, id="large-streamed")]
)
async def test_the_tee_gets_a_copy_of_the_request_and_the_response_and_both_ends(
    make_front: FrontFactory, upstream: tuple[str, Upstream], payload: bytes
) -> None:
    base, _ = upstream
    tee = RecordingTee()
    front = await make_front(base, tee=tee)

    response = await front.client.post("/echo", data=payload)

    assert await response.read() == payload
    assert tee.events == ["request complete", "response head 200", "response complete"]
    assert b"".join(tee.request) == payload
    assert b"".join(tee.response) == payload
    assert tee.headers[0]["X-Echo"] == "1"  # the upstream's own head, before hygiene


async def test_the_tee_sees_a_request_without_a_body_complete_at_once(
    make_front: FrontFactory, upstream: tuple[str, Upstream]
) -> None:
    base, _ = upstream
    tee = RecordingTee()
    front = await make_front(base, tee=tee)

    response = await front.client.get("/chunked")

    assert await response.read() == b"one;two;three"
    assert tee.events == ["request complete", "response head 200", "response complete"]
    assert (tee.request, b"".join(tee.response)) == ([], b"one;two;three")
