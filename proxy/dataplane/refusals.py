"""The handler's refusals: each failure of a forwarded request as the JSON answer the client gets. An
upstream's failure is written into the request's Trip, which the handler records (handler._record).
"""

from __future__ import annotations

from aiohttp import web

from proxy.client import CircuitOpen, UpstreamError
from proxy.dataplane.bodies import BudgetExhausted
from proxy.dataplane.errors import BodyReadTimeout, BodyTooLarge
from proxy.dataplane.trip import Trip
from proxy.dataplane.upstreams import UpstreamBusy
from proxy.metrics import ProxyMetrics
from strangler_common.web import REQUEST_ID_HEADER, json_error

__all__ = ["Refusals"]

Refused = BodyTooLarge | BodyReadTimeout | BudgetExhausted | UpstreamError


class Refusals:
    def __init__(self, metrics: ProxyMetrics) -> None:
        self.metrics = metrics

    def answer(self, exc: Refused, trip: Trip) -> web.Response:
        (table, decision), request_id, upstream = trip.routing, trip.request_id, trip.upstream
        headers = {REQUEST_ID_HEADER: request_id}
        if isinstance(exc, BodyTooLarge):
            message = f"the request body is larger than the limit of {table.limits.max_body_bytes} bytes"
            return json_error(413, "payload_too_large", message, headers=headers, request_id=request_id)
        if isinstance(exc, BodyReadTimeout):
            message = "the request body stopped arriving"
            return json_error(408, "request_timeout", message, headers=headers, request_id=request_id)
        retry = {**headers, "Retry-After": "1"}
        if isinstance(exc, BudgetExhausted):
            self.metrics.buffer_refused("busy")
            message = "the proxy cannot hold another request body right now; retry shortly"
            return json_error(503, "busy", message, headers=retry, request_id=request_id)
        if isinstance(exc, UpstreamBusy):
            self.metrics.upstream_busy.labels(decision.route, exc.upstream).inc()
            return json_error(503, exc.code, str(exc), headers=retry, request_id=request_id)
        if not isinstance(exc, CircuitOpen):  # not tried at all: strangler_circuit_rejected_total
            trip.failed(upstream, exc.kind, str(exc))
        what = "did not answer in time" if exc.timeout else "could not be reached"
        message = f"upstream {upstream!r} {what}"
        return json_error(exc.status, exc.code, message, headers=headers, request_id=request_id)
