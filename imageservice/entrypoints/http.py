"""The HTTP entry point: `create_app(settings)` serves the image API contract with aiohttp.

Handlers only translate (see entrypoints/api.py); resources open and close in `cleanup_ctx`.
Routes: POST/GET /api/images, GET /api/images/{id}, GET /api/images/files/{name}, /healthz, /metrics.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CollectorRegistry

from imageservice.bootstrap import Container, Overrides, build
from imageservice.entrypoints import api
from imageservice.services import GenerationService
from imageservice.settings import MAX_BODY_BYTES, Settings
from strangler_common.web import install_observability, json_error, metrics_handler

__all__ = ["CONTAINER", "create_app"]

CONTAINER = web.AppKey("container", Container)


def _service(request: web.Request) -> GenerationService:
    return request.app[CONTAINER].service


def _error(exc: api.ApiError) -> web.Response:
    return json_error(exc.status, exc.code, exc.message, headers=exc.headers or None)


async def post_images(request: web.Request) -> web.Response:
    service = _service(request)
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return _error(
            api.reject(
                service.metrics, 413, "payload_too_large", f"the body must be at most {MAX_BODY_BYTES} bytes"
            )
        )
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:  # chunked bodies have no Content-Length to check up front
        return _error(
            api.reject(
                service.metrics, 413, "payload_too_large", f"the body must be at most {MAX_BODY_BYTES} bytes"
            )
        )
    try:
        created = await api.post_images(
            service, body=body, content_type=request.headers.get("Content-Type"), headers=request.headers,
            gate=request.app[CONTAINER].shadow,
        )
    except api.ApiError as exc:
        return _error(exc)
    return web.json_response(created.body, status=201, headers=created.headers)


async def list_images(request: web.Request) -> web.Response:
    try:
        return web.json_response(await api.list_generations(_service(request), request.query.get("limit")))
    except api.ApiError as exc:
        return _error(exc)


async def get_image(request: web.Request) -> web.Response:
    try:
        return web.json_response(await api.get_generation(_service(request), request.match_info["id"]))
    except api.ApiError as exc:
        return _error(exc)


async def get_file(request: web.Request) -> web.Response:
    try:
        data = await api.get_file(_service(request), request.match_info["name"])
    except api.ApiError as exc:
        return _error(exc)
    # Names are never reused, so a file never changes.
    return web.Response(
        body=data, content_type="image/png", headers={"Cache-Control": "public, max-age=31536000, immutable"}
    )


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app(
    settings: Settings, *, overrides: Overrides | None = None, registry: CollectorRegistry | None = None
) -> web.Application:
    registry = registry if registry is not None else CollectorRegistry()
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    install_observability(app)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        async with build(settings, registry=registry, overrides=overrides) as container:
            app[CONTAINER] = container
            yield

    app.cleanup_ctx.append(lifecycle)
    app.router.add_post("/api/images", post_images)
    app.router.add_get("/api/images", list_images)
    app.router.add_get("/api/images/files/{name}", get_file)
    app.router.add_get("/api/images/{id}", get_image)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_handler(registry))
    return app
