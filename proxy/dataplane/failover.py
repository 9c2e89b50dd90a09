"""The request path's resilience: circuit breakers around every upstream call, fallback to the primary.

Owns: Body and read_body() (on a route that streams request bodies, keep a body up to the fallback's
max_body_bytes — and what the memory budget allows — so it can be sent twice, or hand back a stream
that still sends every byte when it is larger), CircuitOpen, and Caller:
one upstream call behind its breaker (`call`), and the candidate-then-primary sequence (`with_fallback`).
Does not own the HTTP exchange (forwarding.forward), the decisions (fallback.py, breaker.py, guard.py)
or their state and metrics (resilience.py).

The candidate's response is judged on its status line alone, before anything is streamed to the client
(forward's `divert`): once a byte of it has reached the client it is never replaced.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import lru_cache

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from proxy.dataplane.bodies import BufferedBody
from proxy.dataplane.errors import Diverted, UpstreamError
from proxy.dataplane.forwarding import Exchange, Tee, forward
from proxy.dataplane.headers import upstream_url
from proxy.dataplane.replay import Body, read_body, sendable
from proxy.dataplane.upstreams import UpstreamBusy, UpstreamSessions
from proxy.resilience.fallback import FallbackPolicy, Kind, kind_of_error, kind_of_status, replay
from proxy.resilience.memory import Budget, Hold
from proxy.resilience.state import Resilience, is_connection_failure
from proxy.routing import Decision, RouteTable

Report = Callable[[str, str, str, str, str], None]  # (route, upstream, kind, detail, request_id)


@lru_cache(maxsize=256)
def client_timeout(connect_s: float, read_s: float) -> aiohttp.ClientTimeout:
    # sock_connect bounds the TCP connect; sock_read the wait for the headers and then for each body
    # chunk: an idle stream times out, a long one does not. No total: a 1 GB download takes as long as
    # it takes. `connect` (a free pooled connection, then the connect) only keeps a full pool from
    # making a request wait forever.
    return aiohttp.ClientTimeout(
        total=None, connect=connect_s + read_s, sock_connect=connect_s, sock_read=read_s
    )


class CircuitOpen(UpstreamError):
    """The upstream's breaker is open: it was not tried at all (502, and fallback as for connect_error)."""

    def __init__(self, upstream: str) -> None:
        detail = f"circuit open for upstream {upstream!r}: not tried"
        super().__init__("connect", timeout=False, detail=detail)


@dataclass(slots=True)
class Call:
    """The fixed parts of one forwarded request (whichever upstream ends up serving it)."""

    request: web.Request
    table: RouteTable
    path: str
    query: str
    headers: CIMultiDict[str]
    request_id: str
    exchange: Exchange
    body: BufferedBody | None = None  # read whole before any upstream call (request_body: buffer)


class Caller:
    def __init__(
        self, sessions: UpstreamSessions, resilience: Resilience, report: Report, memory: Budget
    ) -> None:
        self.sessions = sessions
        self.resilience = resilience
        self.report = report
        self.memory = memory  # the process-wide memory budget (fallback copies on streamed routes)

    async def call(
        self,
        call: Call,
        upstream: str,
        *,
        tee: Tee | None = None,
        body: bytes | AsyncIterator[bytes] | None = None,
        divert: Callable[[int], bool] | None = None,
        guarded: str | None = None,  # the route whose guard counts this call (candidate calls only)
    ) -> web.StreamResponse:
        """forward() behind the upstream's breaker; an open breaker raises CircuitOpen at once."""
        resilience = self.resilience
        if not resilience.admit(upstream):
            if guarded is not None:
                resilience.candidate_outcome(guarded, error=True)
            raise CircuitOpen(upstream)
        spec = call.table.upstreams[upstream]
        if body is None and call.body is not None:
            body = sendable(call.body)
        try:
            async with self.sessions.lease(upstream) as session:
                response = await forward(
                    call.request, session, upstream_url(spec.url, call.path, call.query), call.headers,
                    timeout=client_timeout(spec.connect_timeout_s, spec.timeout_s),
                    max_body_bytes=call.table.limits.max_body_bytes, request_id=call.request_id,
                    exchange=call.exchange, tee=tee, body=body, divert=divert,
                )  # fmt: skip
        except Diverted as diverted:
            resilience.connected(upstream)
            if guarded is not None:
                resilience.candidate_outcome(guarded, error=diverted.status >= 500)
            raise
        except UpstreamBusy:
            resilience.abandoned(upstream)  # our own cap said no: nothing about the upstream's health
            raise
        except UpstreamError as error:
            if is_connection_failure(error.kind, error.__cause__):
                resilience.disconnected(upstream)
            else:
                resilience.abandoned(upstream)
            if guarded is not None:
                resilience.candidate_outcome(guarded, error=True)
            raise
        except BaseException:
            resilience.abandoned(upstream)  # the client went away, or its body was refused
            raise
        resilience.connected(upstream)
        if guarded is not None:
            resilience.candidate_outcome(guarded, error=response.status >= 500)
        return response

    async def with_fallback(
        self, call: Call, decision: Decision, primary: str, policy: FallbackPolicy, labels: list[str]
    ) -> web.StreamResponse:
        """The candidate first; on a failure fallback.replay() allows, the same request to the primary.

        Anything not replayed is raised as it would be without fallback (502/504, or the candidate's
        own answer streamed). A replay relabels the request as served by the primary.
        """
        request = call.request
        hold = Hold(self.memory)  # what a kept copy takes from the budget: back when the request ends
        try:
            body = Body(data=b"")
            if call.body is not None:  # buffered whole already: replayable up to the fallback's own bound
                body = Body(buffered=call.body, over_keep=call.body.size > policy.max_body_bytes)
            elif request.body_exists:
                body = await read_body(
                    request.content,
                    keep=policy.max_body_bytes,
                    limit=call.table.limits.max_body_bytes,
                    declared=request.content_length,
                    hold=hold,
                )
            return await self._candidate_then_primary(call, decision, primary, policy, labels, body)
        finally:
            hold.close()

    async def _candidate_then_primary(
        self, call: Call, decision: Decision, primary: str, policy: FallbackPolicy, labels: list[str],
        body: Body,
    ) -> web.StreamResponse:  # fmt: skip
        request = call.request
        method = request.method
        replayable = body.replayable
        if body.budget_refused:
            self.resilience.proxy_metrics.buffer_refused("fallback")

        def divert(status: int) -> bool:
            kind = kind_of_status(status)
            return kind is not None and replay(policy, kind, method=method, body_buffered=replayable).replay

        payload = body.payload() if request.body_exists else None
        try:
            return await self.call(
                call, decision.upstream, body=payload, divert=divert, guarded=decision.route
            )
        except Diverted as diverted:
            kind: Kind = kind_of_status(diverted.status) or "5xx"
            detail = f"answered {diverted.status}"
        except UpstreamError as error:
            kind = "circuit_open" if isinstance(error, CircuitOpen) else kind_of_error(error.kind)
            if not replay(policy, kind, method=method, body_buffered=replayable).replay:
                raise  # answered by the caller as without fallback (and counted there)
            if kind != "circuit_open" and not isinstance(error, UpstreamBusy):
                # the candidate's failure still counts, though the client is served
                self.report(decision.route, decision.upstream, error.kind, str(error), call.request_id)
            detail = str(error)
        self.resilience.fell_back(decision.route, kind, upstream=decision.upstream, detail=detail,
                                  request_id=call.request_id)  # fmt: skip
        labels[1], labels[2] = primary, "primary"
        return await self.call(call, primary, body=body.payload() if request.body_exists else None)
