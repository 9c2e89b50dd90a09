"""The proxy as an HTTP client of its upstreams, for the live path and the shadow path alike.

Owns the one factory of every aiohttp `ClientSession` the proxy still opens (new_session: WebSocket
upgrades; HTTP goes through proxy.upstream's pools), the failures of a call (UpstreamError, CircuitOpen,
classify) and the one place where the end of a call is booked on a circuit breaker (settle). A leaf:
imports nothing of the proxy, so the shadow package and the data plane share it without an arrow
between them.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import aiohttp

__all__ = [
    "SKIP_AUTO_HEADERS", "CircuitOpen", "UpstreamError", "classify", "new_session", "settle",
]  # fmt: skip

# Never let the client library add or rewrite what the caller sent (transparency).
SKIP_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")


def new_session() -> aiohttp.ClientSession:
    """One keep-alive pool for WebSocket upgrades. No connection limit here: resilience.slots caps the
    requests in flight per upstream, so the pool itself never queues."""
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=30)
    return aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,  # compressed bodies pass through as-is
        cookie_jar=aiohttp.DummyCookieJar(),  # a shared session never carries one user's cookies
        skip_auto_headers=SKIP_AUTO_HEADERS,
        timeout=aiohttp.ClientTimeout(total=None),
        trust_env=False,
    )


class UpstreamError(Exception):
    """The upstream failed before the response headers reached the client."""

    def __init__(self, kind: str, *, timeout: bool, detail: str, connection_failure: bool = False) -> None:
        super().__init__(detail)
        self.kind = kind  # connect | timeout | reset | protocol | busy (the metric's label)
        self.timeout = timeout
        # refused or reset connections and connect timeouts (what opens a breaker), not slow answers
        self.connection_failure = connection_failure

    @property
    def status(self) -> int:
        return 504 if self.timeout else 502

    @property
    def code(self) -> str:
        return "upstream_timeout" if self.timeout else "upstream_unreachable"


class CircuitOpen(UpstreamError):
    """The upstream's breaker is open: it was not tried at all (502, and fallback as for connect_error)."""

    def __init__(self, upstream: str) -> None:
        detail = f"circuit open for upstream {upstream!r}: not tried"
        super().__init__("connect", timeout=False, detail=detail)


def classify(exc: BaseException) -> UpstreamError:
    """The client library's exception as an UpstreamError of one kind."""
    if isinstance(exc, asyncio.TimeoutError):  # includes aiohttp's connect and socket-read timeouts
        detail = str(exc) or type(exc).__name__
        connect = isinstance(exc, aiohttp.ConnectionTimeoutError)
        return UpstreamError("timeout", timeout=True, detail=detail, connection_failure=connect)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamError("connect", timeout=False, detail=str(exc), connection_failure=True)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError | ConnectionError):
        detail = str(exc) or type(exc).__name__
        return UpstreamError("reset", timeout=False, detail=detail, connection_failure=True)
    return UpstreamError("protocol", timeout=False, detail=str(exc) or type(exc).__name__)


class Breaker(Protocol):
    """What settle() books on (resilience.breaker.CircuitBreaker)."""

    def success(self) -> str | None: ...
    def failure(self) -> str | None: ...
    def abandon(self) -> None: ...


def settle(breaker: Breaker, error: BaseException | None) -> str | None:
    """Book the end of one call: an answer (error None) is a success, a connection failure a failure,
    anything else (slow, cut short by the proxy or the client, refused by our own cap) says nothing
    about whether the upstream can be reached. Returns the state the breaker entered, if it changed."""
    if error is None:
        return breaker.success()
    if isinstance(error, UpstreamError) and error.connection_failure:
        return breaker.failure()
    breaker.abandon()
    return None
