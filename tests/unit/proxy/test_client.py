"""The proxy as an HTTP client: how a failed call is classified, how its end is booked on a breaker, the
per-call timeouts and the one session factory (proxy/client.py)."""

from __future__ import annotations

import asyncio
import errno
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web
from aiohttp.client_reqrep import ConnectionKey
from aiohttp.test_utils import TestServer

from proxy.client import (
    SKIP_AUTO_HEADERS,
    CircuitOpen,
    UpstreamError,
    classify,
    new_session,
    settle,
)
from proxy.dataplane.errors import BodyTooLarge
from proxy.dataplane.upstreams import UpstreamBusy
from proxy.resilience.breaker import BreakerPolicy, CircuitBreaker
from tests.integration.proxy.conftest import closed_port, url_of

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=2.0, sock_read=5.0)  # bounds, never asserted on


# -- classify ------------------------------------------------------------------------------------------
# what the connector names the connection it failed to make (its message reads host, port and TLS)
KEY = ConnectionKey("127.0.0.1", 9, False, True, None, None, None)


def unresolved() -> aiohttp.ClientConnectorDNSError:
    return aiohttp.ClientConnectorDNSError(KEY, OSError(-2, "Name or service not known"))


def refused() -> aiohttp.ClientConnectorError:
    return aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"))


@pytest.mark.parametrize(
    ("exc", "kind", "timeout", "connection_failure"),
    [
        (refused(), "connect", False, True),
        (unresolved(), "connect", False, True),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "reset", False, True),
        (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), "reset", False, True),
        (aiohttp.ServerDisconnectedError(), "reset", False, True),
        (aiohttp.ClientOSError(errno.EPIPE, "Broken pipe"), "reset", False, True),
        (aiohttp.ConnectionTimeoutError("Connection timeout to host"), "timeout", True, True),
        (aiohttp.SocketTimeoutError("Timeout on reading data from socket"), "timeout", True, False),
        (TimeoutError(), "timeout", True, False),
        (aiohttp.ClientPayloadError("Response payload is not completed"), "protocol", False, False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else None,
)
def test_every_client_failure_is_one_kind_with_its_status_code_and_breaker_meaning(
    exc: BaseException, kind: str, timeout: bool, connection_failure: bool
) -> None:
    error = classify(exc)
    assert (error.kind, error.timeout, error.connection_failure) == (kind, timeout, connection_failure)
    assert (error.status, error.code) == (
        (504, "upstream_timeout") if timeout else (502, "upstream_unreachable")
    )
    assert str(error)  # the detail is never empty, even for an exception without a message


def test_an_open_circuit_is_a_502_that_says_the_upstream_was_not_tried_and_is_no_connection_failure() -> None:
    error = CircuitOpen("new")
    assert (error.kind, error.status, error.code) == ("connect", 502, "upstream_unreachable")
    assert error.connection_failure is False
    assert "'new'" in str(error)


@asynccontextmanager
async def hanging_up(answer: bytes) -> AsyncIterator[str]:
    """A server on loopback that reads the request head, writes `answer` (perhaps nothing) and hangs up."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.close()
        await server.wait_closed()


async def failure_of(url: str) -> BaseException:
    """What the client library really raises for one GET to `url`."""
    async with new_session() as session:
        with pytest.raises(aiohttp.ClientError) as caught:
            async with session.get(url, timeout=TIMEOUT) as response:
                await response.read()
    return caught.value


async def test_a_refused_connect_as_the_client_library_raises_it_is_a_connection_failure() -> None:
    error = classify(await failure_of(f"http://127.0.0.1:{closed_port()}/"))
    assert (error.kind, error.status, error.connection_failure) == ("connect", 502, True)


async def test_an_upstream_that_hangs_up_without_answering_is_a_reset_and_a_connection_failure() -> None:
    async with hanging_up(b"") as url:
        error = classify(await failure_of(url))
    assert (error.kind, error.status, error.connection_failure) == ("reset", 502, True)


async def test_an_answer_that_is_not_http_is_a_protocol_error_that_does_not_open_a_breaker() -> None:
    async with hanging_up(b"SMTP ready\r\n\r\n") as url:
        error = classify(await failure_of(url))
    assert (error.kind, error.status, error.connection_failure) == ("protocol", 502, False)


# -- settle ----------------------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


POLICY = BreakerPolicy(failures=3, open_s=5.0, max_open_s=20.0)
CONNECTION_FAILURES = [
    classify(refused()),
    classify(ConnectionResetError(errno.ECONNRESET, "reset")),
    classify(aiohttp.ServerDisconnectedError()),
    classify(aiohttp.ConnectionTimeoutError("Connection timeout to host")),
]
SAYS_NOTHING = [
    classify(aiohttp.SocketTimeoutError("Timeout on reading data from socket")),  # slow, not unreachable
    classify(TimeoutError()),
    classify(aiohttp.ClientPayloadError("Response payload is not completed")),
    UpstreamBusy("new", 4),  # our own cap refused it: nothing was sent
    asyncio.CancelledError(),  # the client went away
    BodyTooLarge(),  # the client's body was refused
]


def names(errors: Sequence[BaseException]) -> list[str]:
    return [f"{type(error).__name__}-{getattr(error, 'kind', '')}" for error in errors]


def open_breaker(clock: Clock) -> CircuitBreaker:
    breaker = CircuitBreaker(POLICY, clock=clock)
    for _ in range(POLICY.failures):
        settle(breaker, CONNECTION_FAILURES[0])
    assert breaker.state == "open"
    return breaker


def test_an_answer_keeps_a_closed_breaker_closed_and_reports_no_transition() -> None:
    breaker = CircuitBreaker(POLICY, clock=Clock())
    assert settle(breaker, None) is None
    assert breaker.state == "closed"


@pytest.mark.parametrize("error", CONNECTION_FAILURES, ids=names(CONNECTION_FAILURES))
def test_consecutive_connection_failures_open_the_breaker(error: UpstreamError) -> None:
    breaker = CircuitBreaker(POLICY, clock=Clock())
    assert [settle(breaker, error) for _ in range(POLICY.failures)] == [None, None, "open"]
    assert breaker.state == "open"
    assert breaker.allow() == (False, None)


def test_an_answer_between_connection_failures_starts_the_count_again() -> None:
    breaker = CircuitBreaker(POLICY, clock=Clock())
    settle(breaker, CONNECTION_FAILURES[0])
    settle(breaker, CONNECTION_FAILURES[0])
    settle(breaker, None)
    settle(breaker, CONNECTION_FAILURES[0])
    assert settle(breaker, CONNECTION_FAILURES[0]) is None
    assert breaker.state == "closed"


@pytest.mark.parametrize("error", SAYS_NOTHING, ids=names(SAYS_NOTHING))
def test_a_call_that_says_nothing_about_reachability_neither_counts_nor_clears_failures(
    error: BaseException,
) -> None:
    breaker = CircuitBreaker(POLICY, clock=Clock())
    settle(breaker, CONNECTION_FAILURES[0])
    settle(breaker, CONNECTION_FAILURES[0])
    assert [settle(breaker, error) for _ in range(5)] == [None] * 5
    assert breaker.state == "closed"
    assert settle(breaker, CONNECTION_FAILURES[0]) == "open"  # the third connection failure in a row


@pytest.mark.parametrize("error", SAYS_NOTHING, ids=names(SAYS_NOTHING))
def test_a_probe_that_says_nothing_is_abandoned_so_the_next_request_may_probe(error: BaseException) -> None:
    clock = Clock()
    breaker = open_breaker(clock)
    clock.now += POLICY.open_s
    assert breaker.allow() == (True, "half_open")
    assert breaker.allow() == (False, None)  # one probe at a time
    assert settle(breaker, error) is None
    assert breaker.state == "half_open"
    assert breaker.allow() == (True, None)


def test_an_answered_probe_closes_the_breaker_and_a_failed_one_opens_it_again() -> None:
    clock = Clock()
    breaker = open_breaker(clock)
    clock.now += POLICY.open_s
    breaker.allow()
    assert settle(breaker, CONNECTION_FAILURES[0]) == "open"
    clock.now += 2 * POLICY.open_s  # the back-off doubled
    assert breaker.allow() == (True, "half_open")
    assert settle(breaker, None) == "closed"
    assert breaker.allow() == (True, None)


async def test_a_session_passes_bodies_through_keeps_no_cookies_adds_no_headers_and_ignores_the_env() -> None:
    session = new_session()
    try:
        assert session.auto_decompress is False
        assert isinstance(session.cookie_jar, aiohttp.DummyCookieJar)
        assert {name.lower() for name in session.skip_auto_headers} == {
            name.lower() for name in SKIP_AUTO_HEADERS
        }
        assert session.trust_env is False
        assert session.timeout.total is None
        connector = session.connector
        assert connector is not None
        assert (connector.limit, connector.limit_per_host) == (0, 0)
    finally:
        await session.close()


def recording_app(seen: list[dict[str, str]]) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        response = web.Response(
            body=gzip.compress(b"hello " * 100, mtime=0), headers={"Content-Encoding": "gzip"}
        )
        response.set_cookie("session", "alice")
        return response

    app = web.Application()
    app.router.add_get("/", handle)
    return app


async def test_what_a_session_sends_and_returns_is_what_the_caller_gave_and_the_upstream_sent(
    aiohttp_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[dict[str, str]] = []
    server = await aiohttp_server(recording_app(seen))
    # With trust_env the call would go to this (dead) proxy; without, it goes straight to the upstream.
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with new_session() as session:
        for _ in range(2):
            async with session.get(url_of(server) + "/", timeout=TIMEOUT) as response:
                body = await response.read()
    assert gzip.decompress(body) == b"hello " * 100  # still compressed: passed through as-is
    assert response.headers["Content-Encoding"] == "gzip"
    for headers in seen:
        assert {name.lower() for name in headers} == {"host"}  # nothing added (and no cookie sent back)
