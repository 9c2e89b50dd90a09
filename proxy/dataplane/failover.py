"""The request path's resilience: circuit breakers around every upstream call, fallback to the primary.

Owns Caller: one upstream call behind its breaker (`call`), and the candidate-then-primary sequence
(`with_fallback`, which keeps the body so it can be sent twice: replay.py). Does not own the HTTP exchange
(forwarding.forward), the breaker bookkeeping (proxy.client.settle, through Resilience.settle), the
decisions (resilience/fallback.py, breaker.py, guard.py) or their state and metrics (resilience/state.py).
What it learns goes into the request's Trip: the upstream that served it, and a candidate failure that a
fallback covered.

The candidate's response is judged on its status line alone, before anything is streamed to the client
(forward's `divert`): once a byte of it has reached the client it is never replaced.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from proxy.client import CircuitOpen, UpstreamError
from proxy.dataplane.errors import Diverted
from proxy.dataplane.forwarding import Tee, forward
from proxy.dataplane.replay import Body, read_body, sendable
from proxy.dataplane.trip import Trip
from proxy.dataplane.upstreams import UpstreamBusy, UpstreamSessions
from proxy.resilience.fallback import FallbackPolicy, Kind, kind_of_error, kind_of_status, replay
from proxy.resilience.memory import Budget, Hold
from proxy.resilience.state import Resilience

__all__ = ["Caller"]


class Caller:
    def __init__(self, sessions: UpstreamSessions, resilience: Resilience, memory: Budget) -> None:
        self.sessions = sessions
        self.resilience = resilience
        self.memory = memory  # the process-wide memory budget (fallback copies on streamed routes)

    async def call(
        self,
        trip: Trip,
        upstream: str,
        *,
        tee: Tee | None = None,
        body: bytes | AsyncIterator[bytes] | None = None,
        divert: Callable[[int], bool] | None = None,
        guarded: str | None = None,  # the route whose guard counts this call (candidate calls only)
    ) -> None:
        """forward() behind the upstream's breaker; an open breaker raises CircuitOpen at once."""
        resilience = self.resilience
        if not resilience.admit(upstream):
            if guarded is not None:
                resilience.candidate_outcome(guarded, error=True)
            raise CircuitOpen(upstream)
        table, _ = trip.routing
        spec = table.upstreams[upstream]
        if body is None and trip.body is not None:
            body = sendable(trip.body)
        # whatever body is sent is the client's whole body: its size is known when it was buffered or declared
        length = trip.body.size if trip.body is not None else trip.request.content_length
        target = trip.path + "?" + trip.query if trip.query else trip.path
        try:
            async with self.sessions.lease(upstream) as pool:
                await forward(
                    trip, pool, target, connect_timeout_s=spec.connect_timeout_s,
                    read_timeout_s=spec.timeout_s, max_body_bytes=table.limits.max_body_bytes, tee=tee,
                    body=body, body_length=length, divert=divert,
                )  # fmt: skip
        except Diverted as diverted:
            resilience.settle(upstream, None)  # it answered: reachable
            if guarded is not None:
                resilience.candidate_outcome(guarded, error=diverted.status >= 500)
            raise
        except BaseException as error:
            resilience.settle(upstream, error)
            # our own cap (busy), a refused body or a client gone say nothing about the candidate
            counts = isinstance(error, UpstreamError) and not isinstance(error, UpstreamBusy)
            if guarded is not None and counts:
                resilience.candidate_outcome(guarded, error=True)
            raise
        resilience.settle(upstream, None)
        if guarded is not None:
            resilience.candidate_outcome(guarded, error=trip.responder.status >= 500)

    async def with_fallback(self, trip: Trip, policy: FallbackPolicy) -> None:
        """The candidate first; on a failure fallback.replay() allows, the same request to the primary.

        Anything not replayed is raised as it would be without fallback (502/504, or the candidate's
        own answer streamed). A replay makes the trip served by the primary.
        """
        request = trip.request
        hold = Hold(self.memory)  # what a kept copy takes from the budget: back when the request ends
        try:
            body = Body(data=b"")
            if trip.body is not None:  # buffered whole already: replayable up to the fallback's own bound
                body = Body(buffered=trip.body, over_keep=trip.body.size > policy.max_body_bytes)
            elif request.body_exists:
                table, _ = trip.routing
                body = await read_body(
                    request.content,
                    keep=policy.max_body_bytes,
                    limit=table.limits.max_body_bytes,
                    declared=request.content_length,
                    hold=hold,
                )
            await self._candidate_then_primary(trip, policy, body)
        finally:
            hold.close()

    async def _candidate_then_primary(self, trip: Trip, policy: FallbackPolicy, body: Body) -> None:
        _, decision = trip.routing
        route = decision.compiled
        assert route is not None, "only a route's candidate falls back"
        request = trip.request
        method = request.method
        replayable = body.replayable
        if body.budget_refused:
            self.resilience.proxy_metrics.buffer_refused("fallback")

        def divert(status: int) -> bool:
            kind = kind_of_status(status)
            return kind is not None and replay(policy, kind, method=method, body_buffered=replayable).replay

        payload = body.payload() if request.body_exists else None
        try:
            await self.call(trip, decision.upstream, body=payload, divert=divert, guarded=decision.route)
            return
        except Diverted as diverted:
            kind: Kind = kind_of_status(diverted.status) or "5xx"
            detail = f"answered {diverted.status}"
        except UpstreamError as error:
            kind = "circuit_open" if isinstance(error, CircuitOpen) else kind_of_error(error.kind)
            if not replay(policy, kind, method=method, body_buffered=replayable).replay:
                raise  # answered by the handler as without fallback (and recorded there)
            if kind != "circuit_open" and not isinstance(error, UpstreamBusy):
                # the candidate's failure still counts, though the client is served
                trip.failed(decision.upstream, error.kind, str(error))
            detail = str(error)
        self.resilience.fell_back(decision.route, kind, upstream=decision.upstream, detail=detail,
                                  request_id=trip.request_id)  # fmt: skip
        trip.served_by(route.primary, "primary")
        await self.call(trip, route.primary, body=body.payload() if request.body_exists else None)
