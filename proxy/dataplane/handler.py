"""The per-request path of the public listener: id, normalized path, decision, forwarding, metrics, log.

Owns the hot path, written out by hand rather than as middleware: no per-request compilation or
logger binding, cookies and query parsed only when a rule of the table reads them, the client IP parsed
once per peer. It is the http1 server's handler (http1/: `handle(request, responder)`): each request
is one Trip (trip.py) that the steps below write into and that _record() reads once at the end: the one
place a request's metrics, upstream errors and access log line are written. Owns no resources (app.py
opens and closes them) and no routing rules (the routing package). A client that disconnects cancels
the handler task, and with it the upstream exchange.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from proxy.client import UpstreamError
from proxy.config.paths import BadPath
from proxy.dataplane import websocket
from proxy.dataplane.bodies import BudgetExhausted, BufferedBody, Buffers, read_buffered
from proxy.dataplane.errors import BodyReadTimeout, BodyTooLarge
from proxy.dataplane.failover import Caller
from proxy.dataplane.headers import request_headers
from proxy.dataplane.http1 import ClientGone, Request, Responder
from proxy.dataplane.refusals import Refusals, send_error
from proxy.dataplane.requestfacts import normalize, request_facts, request_id_of
from proxy.dataplane.trip import Trip
from proxy.dataplane.upstreams import UpstreamSessions
from proxy.live.reload import ConfigStore
from proxy.metrics import ProxyMetrics
from proxy.resilience.state import Resilience
from proxy.routing import RequestFacts, RouteTable, decide
from proxy.shadow.call import ShadowCall
from proxy.shadow.mirror import Shadower
from strangler_common.logs import DirectLog

__all__ = ["ProxyHandler"]

_ACCESS_FIELDS = ("method", "path", "status", "duration_ms", "route", "upstream", "role", "request_id")


class ProxyHandler:
    """The public listener's only handler; one per app."""

    def __init__(
        self,
        store: ConfigStore,
        metrics: ProxyMetrics,
        sessions: UpstreamSessions,
        shadower: Shadower,
        *,
        access_log: bool,
        resilience: Resilience,
        buffers: Buffers,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.sessions = sessions
        self.shadower = shadower
        self.access_log = access_log
        self.resilience = resilience  # guards and breakers (it follows reloads itself; see app.py)
        self.buffers = buffers  # the memory and spool budgets (they follow reloads; see app.py)
        self.refusals = Refusals(metrics)
        self.caller = Caller(sessions, self.resilience, buffers.memory)
        # Bound once, after the entry point configured logging: no per-request logger construction.
        self.log = structlog.get_logger("proxy").bind()
        self.access = DirectLog("request", _ACCESS_FIELDS)  # one line per request: rendered directly

    async def handle(self, request: Request, responder: Responder) -> None:
        started = time.perf_counter()
        trip = Trip(request, responder, request_id_of(request.headers), request.path, request.query)
        status = 500
        try:
            await self._dispatch(trip)
            status = 499 if trip.client_gone else responder.status
        except asyncio.CancelledError:
            status = 499  # the client went away (nginx's convention); the upstream call is cancelled
            raise
        except ClientGone:  # it went away as its answer was written, before its task was cancelled
            status = 499
        except Exception:
            self.log.exception("proxy_failed", path=request.path, request_id=trip.request_id)
            if responder.started:
                responder.abort()  # part of a response is out: the client sees a cut, never a whole answer
            else:
                await send_error(responder, 500, "internal_error", "the proxy failed to handle this request",
                                 trip.request_id)  # fmt: skip
        finally:
            self._record(trip, status, time.perf_counter() - started)

    def _record(self, trip: Trip, status: int, elapsed: float) -> None:
        """The one place a request is recorded: its metrics, its upstream errors, its access log line."""
        route, method = trip.route, trip.request.method
        self.metrics.observe_request(route, trip.upstream, trip.role, method, status, elapsed)
        for upstream, kind, detail in trip.failures or ():
            self.metrics.upstream_error(route, upstream, kind)
            self.log.warning(
                "upstream_error", route=route, upstream=upstream, kind=kind, detail=detail,
                request_id=trip.request_id,
            )  # fmt: skip
        if self.access_log:
            self.access(method, trip.path, status, round(elapsed * 1000, 3), route, trip.upstream, trip.role,
                        trip.request_id)  # fmt: skip

    async def _dispatch(self, trip: Trip) -> None:
        request, request_id = trip.request, trip.request_id
        try:
            trip.path = normalize(trip.path)
        except BadPath as exc:
            await send_error(trip.responder, 400, "invalid_path", str(exc), request_id)
            return
        # read once: this request finishes on this table (the http1 server applied its limits already)
        table = trip.table = self.store.current.table
        facts = request_facts(request, trip.path, request_id, table)
        decision = self.resilience.steer(decide(table, facts))  # a tripped guard: no candidate at all
        trip.decided(decision)
        if decision.reason is not None:
            self.metrics.observe_decision(decision.route, decision.reason)
        try:
            await self._forward(trip, facts)
        except (BodyTooLarge, BodyReadTimeout, BudgetExhausted, UpstreamError) as exc:
            await self.refusals.answer(exc, trip)

    async def _forward(self, trip: Trip, facts: RequestFacts) -> None:
        """Buffer the body, then call the upstream (or the candidate, then the primary on a fallback);
        a shadow copy starts once the client has the primary's whole answer. Whatever it holds for the
        request is given back when it returns."""
        request, (table, decision) = trip.request, trip.routing
        trip.headers = request_headers(request, trip.request_id, table.trusted_proxies)
        shadow: ShadowCall | None = None
        try:
            upgrade = request.upgrade and websocket.is_upgrade(request.headers)
            if request.body_exists and not upgrade and decision.route not in table.streamed:
                trip.body = await self._buffer(request, table)  # before any upstream connection is taken
            if table.shadowed and decision.role == "primary":  # one check when nothing is shadowed
                shadow = self._shadow(trip, facts, upgrade=upgrade)
            if upgrade:
                async with self.sessions.lease(decision.upstream):
                    await websocket.relay(trip, table.upstreams[decision.upstream])
                return
            fallback = (
                self.resilience.plan(decision.route).fallback
                if decision.role == "candidate" and decision.reason != "owner"  # the primary has no copy
                else None
            )
            if fallback is not None:  # the candidate first; the primary if it fails in a way listed
                await self.caller.with_fallback(trip, fallback)
                return
            guarded = decision.route if decision.role == "candidate" else None  # counts for the guard
            await self.caller.call(trip, decision.upstream, tee=shadow, guarded=guarded)
            if shadow is not None:
                shadow.start()  # the client has the primary's whole answer: only now the copy goes
        except BodyTooLarge:
            if shadow is not None:
                shadow.close("skipped_body")
            raise
        finally:
            if shadow is not None:
                shadow.close()  # a no-op once the copy started; ends a copy whose answer never completed
            if trip.body is not None:
                trip.body.close()  # its memory and spool space go back to the budgets

    async def _buffer(self, request: Request, table: RouteTable) -> BufferedBody:
        limits = table.limits
        body = await read_buffered(
            request.content, declared=request.content_length, max_body_bytes=limits.max_body_bytes,
            in_memory=limits.body_buffer_bytes, memory=self.buffers.memory, spool=self.buffers.spool,
        )  # fmt: skip
        if body.memory_refused:
            self.metrics.buffer_refused("request_buffer")
        return body

    def _shadow(self, trip: Trip, facts: RequestFacts, *, upgrade: bool) -> ShadowCall | None:
        (table, decision), request = trip.routing, trip.request
        route = table.shadowed.get(decision.route)
        if route is None or route.candidate is None or trip.headers is None:
            return None
        if upgrade:  # a protocol switch cannot be mirrored
            self.metrics.shadow_outcome(route.name, "skipped_method")
            return None
        return self.shadower.begin(
            route,
            method=request.method,
            sample_key=route.shadow_key(facts),
            request_id=trip.request_id,
            path=trip.path,
            query=trip.query,
            headers=trip.headers,
            content_length=request.content_length if request.body_exists else None,
            candidate=table.upstreams[route.candidate],
            primary=table.upstreams[route.primary],
        )
