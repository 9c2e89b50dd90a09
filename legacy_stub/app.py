"""The app factory: create_app(settings) wires the routes, the state and the single image worker.

Nothing is created at import time; the worker task lives inside cleanup_ctx.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from prometheus_client import CollectorRegistry

from legacy_stub import diagnostics, images, shop, storefront
from legacy_stub.gallery import Gallery
from legacy_stub.http_io import api_errors
from legacy_stub.idempotency import IdempotencyTable
from legacy_stub.keys import GALLERY, IDEMPOTENCY, METRICS, ORDERS, SETTINGS, SHADOW_GATE, WORKER
from legacy_stub.metrics import LegacyMetrics
from legacy_stub.orders import OrderBook
from legacy_stub.painter import Painter, SlowPainter
from legacy_stub.settings import Settings
from legacy_stub.worker import ImageWorker
from strangler_common.shadowmark import ShadowGate
from strangler_common.web import install_observability, metrics_handler

__all__ = ["create_app"]


@asynccontextmanager
async def _image_worker(app: web.Application) -> AsyncIterator[None]:
    worker = app[WORKER]
    worker.start()
    try:
        yield
    finally:
        await worker.stop()


def create_app(settings: Settings, *, painter: Painter | None = None) -> web.Application:
    """The monolith stand-in. `painter` replaces the slow painter (tests use it to hold the worker)."""
    app = web.Application()
    install_observability(app)
    app.middlewares.append(api_errors)

    registry = CollectorRegistry()
    metrics = LegacyMetrics(registry)
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[GALLERY] = Gallery(settings.max_generations)
    app[IDEMPOTENCY] = IdempotencyTable(settings.max_idempotency_keys)
    app[ORDERS] = OrderBook(settings.max_orders)
    app[SHADOW_GATE] = ShadowGate(
        settings.shadow_key, report=lambda verdict: metrics.shadow_markers.labels(verdict).inc()
    )
    app[WORKER] = ImageWorker(
        painter if painter is not None else SlowPainter(settings.image_delay_s),
        max_queue=settings.max_queue,
        metrics=metrics,
    )
    app.cleanup_ctx.append(_image_worker)

    storefront.add_routes(app)
    shop.add_routes(app)
    diagnostics.add_routes(app)
    images.add_routes(app)
    app.router.add_get("/metrics", metrics_handler(registry))
    return app
