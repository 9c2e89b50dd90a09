"""Every web.AppKey of the stub in one place."""

from __future__ import annotations

from aiohttp import web

from legacy_stub.gallery import Gallery
from legacy_stub.idempotency import IdempotencyTable
from legacy_stub.metrics import LegacyMetrics
from legacy_stub.orders import OrderBook
from legacy_stub.settings import Settings
from legacy_stub.worker import ImageWorker
from strangler_common.shadowmark import ShadowGate

__all__ = ["GALLERY", "IDEMPOTENCY", "METRICS", "ORDERS", "SETTINGS", "SHADOW_GATE", "WORKER"]

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", LegacyMetrics)
WORKER = web.AppKey("image_worker", ImageWorker)
GALLERY = web.AppKey("gallery", Gallery)
IDEMPOTENCY = web.AppKey("idempotency", IdempotencyTable)
ORDERS = web.AppKey("orders", OrderBook)
SHADOW_GATE = web.AppKey("shadow_gate", ShadowGate)
