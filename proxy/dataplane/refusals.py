"""The handler's refusals: each failure of a forwarded request as the JSON answer the client gets
(send_error: the one error shape, {"error": {"code", "message", "request_id"}}, with X-Request-ID). An
upstream's failure is written into the request's Trip, which the handler records (handler._record).
"""

from __future__ import annotations

import json

from proxy.client import CircuitOpen, UpstreamError
from proxy.dataplane.bodies import BudgetExhausted
from proxy.dataplane.errors import BodyReadTimeout, BodyTooLarge
from proxy.dataplane.http1 import Responder
from proxy.dataplane.trip import Trip
from proxy.dataplane.upstreams import UpstreamBusy
from proxy.metrics import ProxyMetrics
from strangler_common.web import REQUEST_ID_HEADER, error_body

__all__ = ["Refusals", "send_error"]

Refused = BodyTooLarge | BodyReadTimeout | BudgetExhausted | UpstreamError
_JSON = ("Content-Type", "application/json; charset=utf-8")


async def send_error(
    responder: Responder, status: int, code: str, message: str, request_id: str, *, retry_after: bool = False
) -> None:
    """The proxy's own answer, in the error shape every service uses."""
    body = json.dumps(error_body(code, message, request_id=request_id)).encode()
    headers = [_JSON, (REQUEST_ID_HEADER, request_id)]
    if retry_after:
        headers.append(("Retry-After", "1"))
    await responder.send(status, headers, body)


class Refusals:
    def __init__(self, metrics: ProxyMetrics) -> None:
        self.metrics = metrics

    async def answer(self, exc: Refused, trip: Trip) -> None:
        (table, decision), request_id, upstream = trip.routing, trip.request_id, trip.upstream
        responder = trip.responder
        if responder.started:  # the failure came after the answer began: only a cut is honest now
            responder.abort()
            return
        if isinstance(exc, BodyTooLarge):
            message = f"the request body is larger than the limit of {table.limits.max_body_bytes} bytes"
            await send_error(responder, 413, "payload_too_large", message, request_id)
            return
        if isinstance(exc, BodyReadTimeout):
            message = "the request body stopped arriving"
            await send_error(responder, 408, "request_timeout", message, request_id)
            return
        if isinstance(exc, BudgetExhausted):
            self.metrics.buffer_refused("busy")
            message = "the proxy cannot hold another request body right now; retry shortly"
            await send_error(responder, 503, "busy", message, request_id, retry_after=True)
            return
        if isinstance(exc, UpstreamBusy):
            self.metrics.upstream_busy.labels(decision.route, exc.upstream).inc()
            await send_error(responder, 503, exc.code, str(exc), request_id, retry_after=True)
            return
        if not isinstance(exc, CircuitOpen):  # not tried at all: strangler_circuit_rejected_total
            trip.failed(upstream, exc.kind, str(exc))
        what = "did not answer in time" if exc.timeout else "could not be reached"
        await send_error(responder, exc.status, exc.code, f"upstream {upstream!r} {what}", request_id)
