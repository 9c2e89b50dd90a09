"""The reference the differential fuzz compares the http1 server with: the public listener's connection
layer as it was on aiohttp's server (until 2026-12-02), what aiohttp's HTTP parser refuses answered in
JSON. No longer on the request path; kept here, with the aiohttp internals it relies on pinned by
test_aiohttp_front_door_internals.py.

Owns the limits that act before a request reaches the handler: the parser's bounds (request-line length,
header-line length, header count), the client read timeouts (for a request head, between body chunks,
and for a whole body: slowloris), the cap on open connections (which the caller may lower to what the
process's file descriptors allow: fdlimit.py), and the answer to every refusal the parser makes
(malformed requests, conflicting Content-Length/Transfer-Encoding, TLS on the plain port...). Each is
answered with the proxy's JSON error shape (worded by aiohttp_refusals.py) and the connection is closed;
nothing is forwarded, no stack trace leaves the process. Does not own the checks the handler makes on a
parsed request with the live limits (limits.py).

Wiring: `FrontDoorRunner(app, limits=..., max_connections=..., metrics=...)` replaces `web.AppRunner`;
it swaps in a Server that builds `FrontDoorProtocol` connections. This leans on aiohttp's
RequestHandler/Server (3.14) overriding only `handle_error`, `connection_made` and `data_received`, each
calling the original.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from proxy.config.resilience import Limits
from proxy.dataplane.errors import BodyReadTimeout
from proxy.dataplane.http1.refusals import error_bytes
from proxy.metrics import ProxyMetrics
from tests.fuzz.aiohttp_refusals import parser_bounds, refusal
from tests.fuzz.aiohttp_versions import refuse_other_versions

_log = structlog.get_logger("proxy.dataplane.frontdoor")
LimitsSource = Callable[[], Limits]
CapSource = Callable[[], int]
REFUSAL_LOG_EVERY_S = 10.0  # connections refused at the cap are said at most this often, with a count
__all__ = [
    "FrontDoorProtocol", "FrontDoorRunner", "FrontDoorServer", "error_bytes", "parser_bounds", "refusal",
]  # fmt: skip


class FrontDoorProtocol(RequestHandler):
    """One client connection, with the head read timeout, the connection cap and JSON refusals."""

    def __init__(self, manager: FrontDoorServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._front = manager
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._last_data = 0.0
        self._body_deadline = 0.0  # loop time by which the body being received must be complete

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if len(self._front.connections) > self._front.max_connections():
            self._front.refused()
            self._refuse(503, "Service Unavailable", "too_many_connections",
                         "the proxy has too many open connections; retry later")  # fmt: skip
            return
        self._arm(self._front.limits())

    def data_received(self, data: bytes) -> None:
        before = self._request_count
        super().data_received(data)
        self._last_data = self._loop.time()
        if self._request_count > before:  # a whole head (or a parser refusal) arrived
            self._disarm()
            if self._messages and not self._messages[-1][1].is_eof():
                self._body_deadline = self._last_data + self._front.limits().client_body_timeout_s
                self._watch_body()  # only while a body is still arriving: no timer per plain request
        elif self._head_timer is None and self._body_timer is None and self.transport is not None:
            self._arm(self._front.limits())  # the first bytes of the next head on a kept-alive connection

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().connection_lost(exc)

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        del message  # the parser's message quotes the input: never sent back
        code_status, code, text = refusal(exc, status, self._front.bounds)
        if code_status >= 500:
            _log.error("request_failed", peer=request.remote, error=type(exc).__name__ if exc else None)
        else:
            _log.info("request_refused", peer=request.remote, status=code_status, code=code)
        if request.writer.output_size > 0:
            raise ConnectionError("a response is already on its way; the connection is cut")
        response = web.json_response({"error": {"code": code, "message": text}}, status=code_status)
        response.force_close()
        return response

    def _arm(self, limits: Limits) -> None:
        self._disarm()
        self._head_timer = self._loop.call_later(limits.client_read_timeout_s, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._current_request is not None:  # a response is being written: do not interleave bytes
            self._arm(self._front.limits())
            return
        self._refuse(408, "Request Timeout", "request_timeout",
                     "the request head did not arrive in time")  # fmt: skip

    def _watch_body(self) -> None:
        """While a request body is still arriving, a gap longer than client_read_timeout_s, or a body not
        complete client_body_timeout_s after its head, fails it: the body's reader raises BodyReadTimeout
        and the handler answers 408 (one timer, re-armed lazily, not one per chunk)."""
        now = self._loop.time()
        delay = min(self._front.limits().client_read_timeout_s, max(0.0, self._body_deadline - now))
        timer = self._body_timer
        if timer is not None:
            if timer.when() <= now + delay:
                return  # it fires in time for this body too
            timer.cancel()
        self._body_timer = self._loop.call_later(delay, self._body_check)

    def _body_check(self) -> None:
        self._body_timer = None
        request = self._current_request
        if request is None:
            if self._messages:  # parsed, not yet handled (pipelining): look again later
                delay = self._front.limits().client_read_timeout_s
                self._body_timer = self._loop.call_later(delay, self._body_check)
            return
        content = request.content
        if content.is_eof() or content.exception() is not None:
            return
        timeout = self._front.limits().client_read_timeout_s
        now = self._loop.time()
        idle = now - self._last_data
        left = self._body_deadline - now
        if idle >= timeout or left <= 0:
            self.close_after_response()  # no lingering: it would read the failed body again, and log that
            content.set_exception(BodyReadTimeout())
            return
        self._body_timer = self._loop.call_later(min(timeout - idle, left), self._body_check)

    def close_after_response(self) -> None:
        """Close as soon as the response being written is out, without aiohttp's lingering close (which
        reads and drops an unread body for up to 10 s): for a body the client was told not to send."""
        self._lingering_time = 0.0

    def _refuse(self, status: int, reason: str, code: str, message: str) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(error_bytes(status, reason, code, message))
        self.force_close()


class FrontDoorServer(web.Server):
    """aiohttp's Server, building FrontDoorProtocol connections. Attributes are set by FrontDoorRunner."""

    limits: LimitsSource
    max_connections: CapSource
    metrics: ProxyMetrics | None
    bounds: dict[str, int]
    refused_connections: int
    refusals_said: tuple[float, int]  # (loop time, refused_connections) when the refusals were last said

    def __call__(self) -> RequestHandler:
        return FrontDoorProtocol(self, loop=self._loop, **self._kwargs)

    def refused(self) -> None:
        """One connection refused at the cap: counted, and said at WARNING at most every
        REFUSAL_LOG_EVERY_S (a flood of refusals must not become a flood of log lines)."""
        self.refused_connections += 1
        if self.metrics is not None:
            self.metrics.connections_refused.inc()
        now = self._loop.time()
        said_at, said_count = self.refusals_said
        if now - said_at >= REFUSAL_LOG_EVERY_S:
            _log.warning(
                "connections_refused",
                max_connections=self.max_connections(),
                open=len(self.connections),
                refused=self.refused_connections - said_count,
            )
            self.refusals_said = (now, self.refused_connections)


class FrontDoorRunner(web.AppRunner):
    """web.AppRunner whose connections enforce `limits` (read live, except the parser's bounds, which are
    fixed when the runner starts: a larger value needs a restart, a smaller one is also applied by the
    handler on every request)."""

    def __init__(
        self,
        app: web.Application,
        *,
        limits: LimitsSource,
        max_connections: CapSource | None = None,  # default: limits().max_connections
        metrics: ProxyMetrics | None = None,
        **kwargs: Any,
    ) -> None:
        self._limits = limits
        self._cap = max_connections or (lambda: limits().max_connections)
        self._metrics = metrics
        self._bounds = parser_bounds(limits())
        super().__init__(app, **{**kwargs, **self._bounds})

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = FrontDoorServer  # same object and state, our __call__ (no new attributes)
        front: FrontDoorServer = server  # type: ignore[assignment]  # the class was just swapped
        front.limits = self._limits
        front.max_connections = self._cap
        front.metrics = self._metrics
        front.bounds = self._bounds
        front.refused_connections = 0
        front.refusals_said = (-math.inf, 0)
        refuse_other_versions(front)  # and CONNECT
        return front
