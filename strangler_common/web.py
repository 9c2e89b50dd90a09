"""aiohttp plumbing shared by the services: request ids, the access log, JSON errors, /metrics, run.

Owns what every service does the same way at its edge; owns no business route.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

REQUEST_ID = web.RequestKey("request_id", str)
REQUEST_ID_HEADER = "X-Request-ID"
_ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._:@/+=\-]{1,128}$")

_log = structlog.get_logger("access")

_CODES_BY_STATUS = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    411: "length_required",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "unprocessable_entity",
    429: "rate_limited",
    431: "request_header_fields_too_large",
    500: "internal_error",
    502: "bad_gateway",
    503: "unavailable",
    504: "gateway_timeout",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_request_id(value: str | None) -> str:
    """Keep a caller's request id when it is a sane token; otherwise mint one (ids end up in logs)."""
    if value and _ACCEPTABLE_ID.match(value):
        return value
    return new_request_id()


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def json_error(
    status: int, code: str, message: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> web.Response:
    """The one error shape every service answers with: {"error": {"code", "message", ...}}."""
    return web.json_response(error_body(code, message, **extra), status=status, headers=headers)


def _from_http_exception(exc: web.HTTPException) -> web.StreamResponse:
    if exc.status < 400:
        return exc  # redirects and the like keep their own shape
    code = _CODES_BY_STATUS.get(exc.status, "error")
    message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
    keep = {k: v for k, v in exc.headers.items() if k.lower() in {"allow", "retry-after", "www-authenticate"}}
    return json_error(exc.status, code, message or exc.reason, headers=keep)


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give the request its id, turn every failure into a JSON error, and write one access line."""
    request_id = accept_request_id(request.headers.get(REQUEST_ID_HEADER))
    request[REQUEST_ID] = request_id
    structlog.contextvars.bind_contextvars(request_id=request_id)
    started = time.perf_counter()
    status = 500
    try:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = _from_http_exception(exc)
        except asyncio.CancelledError:
            status = 499  # the client went away; nginx's convention
            raise
        except Exception:
            _log.exception("unhandled_error", method=request.method, path=request.path)
            response = json_error(500, "internal_error", "the server failed to handle this request")
        status = response.status
        return response
    finally:
        _log.info(
            "request",
            method=request.method,
            path=request.path,
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
        )
        structlog.contextvars.unbind_contextvars("request_id")


async def _add_request_id_header(request: web.Request, response: web.StreamResponse) -> None:
    request_id = request.get(REQUEST_ID)
    if request_id is not None and REQUEST_ID_HEADER not in response.headers:
        response.headers[REQUEST_ID_HEADER] = request_id


def install_observability(app: web.Application) -> None:
    """Wire the request-id/access-log/error middleware and the response header into an app."""
    app.middlewares.append(observe)
    app.on_response_prepare.append(_add_request_id_header)


def metrics_handler(registry: CollectorRegistry) -> Handler:
    async def metrics(_: web.Request) -> web.StreamResponse:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    return metrics


def run(app: web.Application | Awaitable[web.Application], *, host: str, port: int, **kwargs: Any) -> None:
    """Serve until SIGINT/SIGTERM, on uvloop when it is installed; our access log replaces aiohttp's."""
    loop: asyncio.AbstractEventLoop
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is optional on platforms without it
        loop = asyncio.new_event_loop()
    else:
        loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    web.run_app(app, host=host, port=port, access_log=None, print=None, loop=loop, **kwargs)
