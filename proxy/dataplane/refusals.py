"""The handler's refusals: each failure of a forwarded request as the JSON answer the client gets, and
the one place an upstream error is counted and logged.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from proxy.dataplane.bodies import BudgetExhausted
from proxy.dataplane.errors import BodyReadTimeout, BodyTooLarge, UpstreamError
from proxy.dataplane.failover import CircuitOpen
from proxy.dataplane.upstreams import UpstreamBusy
from proxy.metrics import ProxyMetrics
from strangler_common.web import REQUEST_ID_HEADER, json_error

__all__ = ["Refusals"]

Refused = BodyTooLarge | BodyReadTimeout | BudgetExhausted | UpstreamError


class Refusals:
    def __init__(self, metrics: ProxyMetrics) -> None:
        self.metrics = metrics
        self.log = structlog.get_logger("proxy").bind()

    def answer(self, exc: Refused, route: str, upstream: str, max_body: int, request_id: str) -> web.Response:
        headers = {REQUEST_ID_HEADER: request_id}
        if isinstance(exc, BodyTooLarge):
            message = f"the request body is larger than the limit of {max_body} bytes"
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
            self.metrics.upstream_busy.labels(route, exc.upstream).inc()
            return json_error(503, exc.code, str(exc), headers=retry, request_id=request_id)
        if not isinstance(exc, CircuitOpen):  # not tried at all: strangler_circuit_rejected_total
            self.upstream_failed(route, upstream, exc.kind, str(exc), request_id)
        what = "did not answer in time" if exc.timeout else "could not be reached"
        message = f"upstream {upstream!r} {what}"
        return json_error(exc.status, exc.code, message, headers=headers, request_id=request_id)

    def upstream_failed(self, route: str, upstream: str, kind: str, detail: str, request_id: str) -> None:
        self.metrics.upstream_error(route, upstream, kind)
        self.log.warning(
            "upstream_error", route=route, upstream=upstream, kind=kind, detail=detail, request_id=request_id
        )
