"""`Expect: 100-continue` on the public listener: a declared body over the limit is refused before it is
invited.

aiohttp answers the expectation from the route's expect handler, before the request handler runs; its
default sends `100 Continue` for any body, so a client announcing 2 MB against a 1 MB limit is invited to
send it all and then gets 413. Here a `Content-Length` over the live `limits.max_body_bytes` is answered
413 `payload_too_large` at once (connection closed: the client may send the body anyway, and it is never
read), and an expectation other than 100-continue is 417 `expectation_failed`, both in the JSON error
shape and counted like any request refused before routing. Otherwise this is aiohttp's default. The
handler's own 413 (body without Expect, or a chunked body that grows over the limit) is unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from aiohttp import HttpVersion11, web

from proxy.dataplane.frontdoor import FrontDoorProtocol
from proxy.live.reload import ConfigStore
from proxy.metrics import ProxyMetrics
from strangler_common.web import json_error

__all__ = ["CONTINUE", "ExpectHandler", "expect_handler"]

ExpectHandler = Callable[[web.Request], Awaitable[web.StreamResponse | None]]
_log = structlog.get_logger("proxy.dataplane.expect")
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def expect_handler(store: ConfigStore, metrics: ProxyMetrics) -> ExpectHandler:
    """The catch-all route's expect handler; limits are read from the table serving now."""

    def refuse(request: web.Request, status: int, code: str, message: str) -> web.StreamResponse:
        metrics.observe_request("none", "none", "none", request.method, status, 0.0)
        _log.info("request_refused", peer=request.remote, status=status, code=code)
        response = json_error(status, code, message)
        response.force_close()
        if isinstance(request.protocol, FrontDoorProtocol):  # the client waits: do not wait for its body
            request.protocol.close_after_response()
        return response

    async def expect(request: web.Request) -> web.StreamResponse | None:
        if request.version != HttpVersion11:
            return None  # an HTTP/1.0 client cannot expect anything: aiohttp's default ignores it too
        if request.headers.get("Expect", "").lower() != "100-continue":
            return refuse(request, 417, "expectation_failed", "only 'Expect: 100-continue' is understood")
        limit = store.current.table.limits.max_body_bytes
        length = request.content_length
        if length is not None and length > limit:
            return refuse(request, 413, "payload_too_large",
                          f"the request body is larger than the limit of {limit} bytes")  # fmt: skip
        await request.writer.write(CONTINUE)
        request.writer.output_size = 0  # the response itself has not started (as aiohttp's default does)
        return None

    return expect
