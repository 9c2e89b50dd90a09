"""The per-request path of the public listener: id, normalized path, decision, forwarding, metrics, log.

Owns the hot path, written out by hand rather than as middleware: no per-request compilation or
logger binding, cookies and query parsed only if a rule asks for them, the client IP parsed once
per peer. Owns no resources (app.py opens and closes them) and no routing rules (routing.py).
Served with `handler_cancellation=True` (server.serve and aiohttp's TestServer do), so a client that
disconnects cancels its upstream request.
"""

from __future__ import annotations

import asyncio
import time

import structlog
from aiohttp import web
from multidict import CIMultiDict

from proxy.config.paths import BadPath
from proxy.dataplane import websocket
from proxy.dataplane.bodies import BudgetExhausted, BufferedBody, Buffers, read_buffered
from proxy.dataplane.errors import BodyReadTimeout, BodyTooLarge, UpstreamError
from proxy.dataplane.failover import Call, Caller
from proxy.dataplane.forwarding import Exchange
from proxy.dataplane.headers import request_headers, upstream_url
from proxy.dataplane.refusals import Refusals
from proxy.dataplane.requestfacts import normalize, request_facts, request_id_of
from proxy.dataplane.upstreams import UpstreamSessions
from proxy.live.reload import ConfigStore
from proxy.metrics import ProxyMetrics
from proxy.resilience.limits import request_refusal
from proxy.resilience.state import Resilience
from proxy.routing import Decision, RequestFacts, RouteTable, decide
from proxy.shadow.call import ShadowCall
from proxy.shadow.mirror import Shadower
from strangler_common.web import REQUEST_ID_HEADER, json_error


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
        self.caller = Caller(sessions, self.resilience, self.refusals.upstream_failed, buffers.memory)
        # Bound once, after the entry point configured logging: no per-request logger construction.
        self.log = structlog.get_logger("proxy").bind()
        self.access = structlog.get_logger("access").bind()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        request_id = request_id_of(request.headers)
        raw_path, _, query = request.raw_path.partition("?")
        labels = ["none", "none", "none", raw_path]  # route, upstream, role, path
        status = 500
        try:
            exchange = Exchange()
            response = await self._dispatch(request, request_id, raw_path, query, labels, exchange)
            status = 499 if exchange.client_gone else response.status
            return response
        except asyncio.CancelledError:
            status = 499  # the client went away (nginx's convention); the upstream call is cancelled
            raise
        except Exception:
            self.log.exception("proxy_failed", path=raw_path, request_id=request_id)
            if request.writer is not None and request.writer.output_size > 0:
                raise  # part of a response is out: aiohttp closes the connection, the client sees a cut
            return json_error(
                500, "internal_error", "the proxy failed to handle this request",
                headers={REQUEST_ID_HEADER: request_id}, request_id=request_id,
            )  # fmt: skip
        finally:
            route, upstream, role, path = labels
            elapsed = time.perf_counter() - started
            self.metrics.observe_request(route, upstream, role, request.method, status, elapsed)
            if self.access_log:
                self._access(request.method, path, status, elapsed, route, upstream, role, request_id)

    def _access(
        self,
        method: str,
        path: str,
        status: int,
        elapsed: float,
        route: str,
        upstream: str,
        role: str,
        request_id: str,
    ) -> None:
        self.access.info(
            "request",
            method=method,
            path=path,
            status=status,
            duration_ms=round(elapsed * 1000, 3),
            route=route,
            upstream=upstream,
            role=role,
            request_id=request_id,
        )

    async def _dispatch(
        self,
        request: web.Request,
        request_id: str,
        raw_path: str,
        query: str,
        labels: list[str],
        exchange: Exchange,
    ) -> web.StreamResponse:
        id_header = {REQUEST_ID_HEADER: request_id}
        try:
            path = normalize(raw_path)
        except BadPath as exc:
            return json_error(400, "invalid_path", str(exc), headers=id_header, request_id=request_id)
        labels[3] = path
        table = self.store.current.table  # read once: this request finishes on this table
        refused = request_refusal(request.raw_path, request.raw_headers, table.limits)
        if refused is not None:
            status, code, message = refused
            return json_error(status, code, message, headers=id_header, request_id=request_id)
        facts = request_facts(request, path, request_id, table.trusted_proxies)
        decision = self.resilience.steer(decide(table, facts))  # a tripped guard: no candidate at all
        labels[0], labels[1], labels[2] = decision.route, decision.upstream, decision.role
        if decision.reason is not None:
            self.metrics.observe_decision(decision.route, decision.reason)
        try:
            response = await self._forward(request, table, facts, decision, query, labels, exchange)
        except (BodyTooLarge, BodyReadTimeout, BudgetExhausted, UpstreamError) as exc:
            max_body = table.limits.max_body_bytes
            return self.refusals.answer(exc, decision.route, labels[1], max_body, request_id)
        if exchange.stream_error is not None:
            self.refusals.upstream_failed(
                decision.route, decision.upstream, exchange.stream_error, "failed mid-body", request_id
            )
        return response

    async def _forward(
        self, request: web.Request, table: RouteTable, facts: RequestFacts, decision: Decision, query: str,
        labels: list[str], exchange: Exchange,
    ) -> web.StreamResponse:  # fmt: skip
        """Buffer the body, start the shadow copy, then call the upstream (or the candidate, then the
        primary on a fallback). Whatever it holds for the request is given back when it returns."""
        spec, path, request_id = table.upstreams[decision.upstream], facts.path, facts.request_id
        outgoing = request_headers(request, request_id, table.trusted_proxies)
        shadow: ShadowCall | None = None
        body: BufferedBody | None = None
        try:
            upgrade = websocket.is_upgrade(request.headers)
            if request.body_exists and not upgrade and decision.route not in table.streamed:
                body = await self._buffer(request, table)  # before any upstream connection is taken
            if table.shadowed and decision.role == "primary":  # one check when nothing is shadowed
                shadow = self._shadow(request, table, decision.route, facts, query, outgoing, upgrade=upgrade)
            url = upstream_url(spec.url, path, query)
            if upgrade:
                async with self.sessions.lease(decision.upstream) as session:
                    return await websocket.relay(
                        request, session, url, outgoing,
                        handshake_timeout_s=spec.connect_timeout_s + spec.timeout_s,
                        max_msg_size=table.limits.max_body_bytes,
                    )  # fmt: skip
            call = Call(request, table, path, query, outgoing, request_id, exchange, body)
            fallback = (
                self.resilience.plan(decision.route).fallback
                if decision.role == "candidate" and decision.reason != "owner"  # the primary has no copy
                else None
            )
            route = table.route(decision.route) if fallback is not None else None
            if fallback is None or route is None:
                guarded = decision.route if decision.role == "candidate" else None  # counts for the guard
                return await self.caller.call(call, decision.upstream, tee=shadow, guarded=guarded)
            # the candidate first; the primary if it fails in a way the route falls back on
            return await self.caller.with_fallback(call, decision, route.primary, fallback, labels)
        except BodyTooLarge:
            if shadow is not None:
                shadow.close("skipped_body")
            raise
        finally:
            if shadow is not None:
                shadow.close()  # a no-op once the primary's answer is complete
            if body is not None:
                body.close()  # its memory and spool space go back to the budgets

    async def _buffer(self, request: web.Request, table: RouteTable) -> BufferedBody:
        limits = table.limits
        body = await read_buffered(
            request.content, declared=request.content_length, max_body_bytes=limits.max_body_bytes,
            in_memory=limits.body_buffer_bytes, memory=self.buffers.memory, spool=self.buffers.spool,
        )  # fmt: skip
        if body.memory_refused:
            self.metrics.buffer_refused("request_buffer")
        return body

    def _shadow(
        self,
        request: web.Request,
        table: RouteTable,
        route_name: str,
        facts: RequestFacts,
        query: str,
        outgoing: CIMultiDict[str],
        *,
        upgrade: bool,
    ) -> ShadowCall | None:
        route = table.shadowed.get(route_name)
        if route is None or route.candidate is None:
            return None
        if upgrade:  # a protocol switch cannot be mirrored
            self.metrics.shadow_outcome(route.name, "skipped_method")
            return None
        return self.shadower.begin(
            route,
            method=request.method,
            sample_key=route.shadow_key(facts),
            request_id=facts.request_id,
            path=facts.path,
            query=query,
            headers=outgoing,
            content_length=request.content_length if request.body_exists else None,
            candidate=table.upstreams[route.candidate],
            primary=table.upstreams[route.primary],
        )
