"""The Lambda entry point: API Gateway REST (payload v1) and HTTP API (payload v2) events.

Same routes and same service layer as the HTTP entry point (both translate through entrypoints/api.py).
One event loop and one container live across warm invocations: `asyncio.run` per call would close the
loop that the clients were created on. Nothing is built at import time; the first event builds it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
from contextlib import AsyncExitStack
from typing import Any

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from imageservice.bootstrap import Container, Overrides, build
from imageservice.entrypoints import api
from imageservice.settings import Settings
from strangler_common.logs import configure_logging
from strangler_common.web import REQUEST_ID_HEADER, accept_request_id, error_body

__all__ = ["LambdaApp", "handler"]

_log = structlog.get_logger("imageservice.lambda")
_FILE = re.compile(r"^/api/images/files/([^/]+)$")
_GENERATION = re.compile(r"^/api/images/([^/]+)$")


class _Request:
    def __init__(self, event: dict[str, Any]) -> None:
        context = event.get("requestContext") or {}
        if event.get("version") == "2.0":
            http = context.get("http", {})
            self.method = str(http.get("method", "GET")).upper()
            path = str(event.get("rawPath") or http.get("path") or "/")
            stage = str(context.get("stage", "$default"))
            if stage != "$default" and path.startswith(f"/{stage}/"):
                path = path[len(stage) + 1 :]  # a named stage prefixes rawPath
            self.path = path
        else:
            self.method = str(event.get("httpMethod", "GET")).upper()
            self.path = str(event.get("path") or "/")
        # v1 may carry headers only in multiValueHeaders; the last value wins, as in `headers`.
        multi = event.get("multiValueHeaders") or {}
        self.headers = {str(k): str(v[-1]) for k, v in multi.items() if v}
        self.headers.update({str(k): str(v) for k, v in (event.get("headers") or {}).items()})
        self.query = {str(k): str(v) for k, v in (event.get("queryStringParameters") or {}).items()}
        raw = event.get("body") or ""
        self.body = base64.b64decode(raw) if event.get("isBase64Encoded") else str(raw).encode()

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)


def _json(status: int, payload: object, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
        "body": json.dumps(payload),
        "isBase64Encoded": False,
    }


def _error(exc: api.ApiError) -> dict[str, Any]:
    return _json(exc.status, error_body(exc.code, exc.message), exc.headers)


async def dispatch(container: Container, event: dict[str, Any]) -> dict[str, Any]:
    request = _Request(event)
    request_id = accept_request_id(request.header(REQUEST_ID_HEADER))
    structlog.contextvars.bind_contextvars(request_id=request_id)
    try:
        response = await _route(container, request)
    except api.ApiError as exc:
        response = _error(exc)
    except Exception:
        _log.exception("unhandled_error", method=request.method, path=request.path)
        response = _json(500, error_body("internal_error", "the server failed to handle this request"))
    finally:
        structlog.contextvars.unbind_contextvars("request_id")
    response["headers"][REQUEST_ID_HEADER] = request_id
    _log.info("request", method=request.method, path=request.path, status=response["statusCode"])
    return response


async def _route(container: Container, request: _Request) -> dict[str, Any]:
    service, path, method = container.service, request.path, request.method
    if path == "/healthz":
        _allow(method, "GET")
        return _json(200, {"status": "ok"})
    if path == "/metrics":  # this environment's counters only; one Lambda instance is one process
        _allow(method, "GET")
        text = generate_latest(service.metrics.registry).decode()
        return {
            "statusCode": 200,
            "headers": {"Content-Type": CONTENT_TYPE_LATEST},
            "body": text,
            "isBase64Encoded": False,
        }
    if path == "/api/images":
        if method == "POST":
            created = await api.post_images(
                service,
                body=request.body,
                content_type=request.header("Content-Type"),
                headers=request.headers,
                gate=container.shadow,
            )
            return _json(201, created.body, created.headers)
        _allow(method, "GET, POST")
        return _json(200, await api.list_generations(service, request.query.get("limit")))
    if match := _FILE.match(path):
        _allow(method, "GET")
        data = await api.get_file(service, match.group(1))
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "image/png", "Cache-Control": "public, max-age=31536000, immutable"},
            "body": base64.b64encode(data).decode("ascii"),
            "isBase64Encoded": True,
        }
    if match := _GENERATION.match(path):
        _allow(method, "GET")
        return _json(200, await api.get_generation(service, match.group(1)))
    raise api.ApiError(404, "not_found", f"no route for {path}")


def _allow(method: str, allowed: str) -> None:
    if method not in {m.strip() for m in allowed.split(",")}:
        raise api.ApiError(405, "method_not_allowed", f"{method} is not allowed here", {"Allow": allowed})


class LambdaApp:
    """One loop, one container, kept for the life of the execution environment."""

    def __init__(self, settings: Settings, *, overrides: Overrides | None = None) -> None:
        self._settings = settings
        self._overrides = overrides
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stack = AsyncExitStack()
        self._container: Container | None = None

    def __call__(self, event: dict[str, Any], context: object = None) -> dict[str, Any]:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(self._handle(event))

    async def _handle(self, event: dict[str, Any]) -> dict[str, Any]:
        if self._container is None:
            self._container = await self._stack.enter_async_context(
                build(self._settings, overrides=self._overrides)
            )
        response = await dispatch(self._container, event)
        pending = self._container.service.settler.pending
        if pending:
            # Lambda freezes this environment once we return: background settling (a key release, an
            # unknown commit) pauses until the next invocation here, or dies with the environment.
            _log.warning(
                "background_settling_paused",
                jobs=pending,
                detail="resumes on this environment's next invocation; if it is reclaimed instead, the "
                "keys wait for their in-progress expiry or `imageservice reconcile`",
            )
        return response

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    def close(self) -> None:
        """For tests and local runs; Lambda itself freezes the environment instead."""
        if self._loop is not None:
            self._loop.run_until_complete(self._stack.aclose())
            self._loop.close()
            self._loop = None
            self._container = None


_app: LambdaApp | None = None


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    global _app  # the warm-invocation cache is the point
    if _app is None:
        configure_logging("imageservice", level=os.environ.get("LOG_LEVEL", "INFO"))
        _app = LambdaApp(Settings.from_env(os.environ))
    return _app(event, context)
