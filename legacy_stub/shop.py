"""The monolith's business routes, which the proxy passes through untouched.

GET /api/catalog, POST /api/orders, GET /api/orders/{id}, GET /healthz (the storefront page, GET /, is
storefront.py). Translation only: validation and the order book live in orders.py.
"""

from __future__ import annotations

import time

from aiohttp import web

from legacy_stub.http_io import ApiError, invalid, read_json
from legacy_stub.keys import METRICS, ORDERS, SETTINGS
from legacy_stub.orders import CATALOG, Order, OrderError, new_order_id, parse_order_lines

__all__ = ["add_routes"]


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "service": "legacy"})


async def catalog(_: web.Request) -> web.Response:
    return web.json_response({"items": [product.to_json() for product in CATALOG]})


async def create_order(request: web.Request) -> web.Response:
    payload = await read_json(request, request.app[SETTINGS].max_order_bytes)
    try:
        lines = parse_order_lines(payload)
    except OrderError as exc:
        raise invalid(exc.field, exc.message) from None
    order = Order(id=new_order_id(), created=int(time.time()), lines=lines)
    request.app[ORDERS].add(order)
    request.app[METRICS].orders.inc()
    return web.json_response(order.to_json(), status=201, headers={"Location": f"/api/orders/{order.id}"})


async def get_order(request: web.Request) -> web.Response:
    order_id = request.match_info["order_id"]
    order = request.app[ORDERS].get(order_id)
    if order is None:
        raise ApiError(404, "not_found", f"no order with id {order_id[:128]!r}")
    return web.json_response(order.to_json())


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/catalog", catalog)
    app.router.add_post("/api/orders", create_order)
    app.router.add_get("/api/orders/{order_id}", get_order)
