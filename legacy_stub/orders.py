"""The storefront's catalog and orders (pure: no I/O, no aiohttp).

Owns the catalog, order validation (every refusal names the field at fault) and the in-memory
order book; the HTTP layer (shop.py) only translates.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CATALOG",
    "Order",
    "OrderBook",
    "OrderError",
    "OrderLine",
    "Product",
    "new_order_id",
    "parse_order_lines",
]

MAX_LINES = 100
MAX_QTY = 100
CURRENCY = "EUR"


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    name: str
    price_cents: int

    def to_json(self) -> dict[str, Any]:
        return {"sku": self.sku, "name": self.name, "price": cents_to_amount(self.price_cents)}


CATALOG: tuple[Product, ...] = (
    Product("IMG-DIGITAL", "Digital download, any generated image", 499),
    Product("IMG-PRINT-S", "Fine-art print, 20x20 cm", 1999),
    Product("IMG-PRINT-L", "Fine-art print, 50x50 cm", 4999),
    Product("IMG-CANVAS", "Canvas, 80x80 cm", 12900),
)
_BY_SKU = {product.sku: product for product in CATALOG}


def cents_to_amount(cents: int) -> float:
    return round(cents / 100, 2)


class OrderError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class OrderLine:
    product: Product
    qty: int

    def to_json(self) -> dict[str, Any]:
        return {
            "sku": self.product.sku,
            "name": self.product.name,
            "qty": self.qty,
            "unit_price": cents_to_amount(self.product.price_cents),
            "line_total": cents_to_amount(self.product.price_cents * self.qty),
        }


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    created: int
    lines: tuple[OrderLine, ...]

    @property
    def total_cents(self) -> int:
        return sum(line.product.price_cents * line.qty for line in self.lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created": self.created,
            "status": "placed",
            "currency": CURRENCY,
            "items": [line.to_json() for line in self.lines],
            "total": cents_to_amount(self.total_cents),
        }


def parse_order_lines(payload: object) -> tuple[OrderLine, ...]:
    """Validate `{"items": [{"sku": str, "qty": int}, ...]}`; raise OrderError naming the field."""
    if not isinstance(payload, dict):
        raise OrderError("body", "must be a JSON object")
    if "items" not in payload:
        raise OrderError("items", "is required")
    items = payload["items"]
    if not isinstance(items, list):
        raise OrderError("items", "must be a list")
    if not 1 <= len(items) <= MAX_LINES:
        raise OrderError("items", f"must hold 1 to {MAX_LINES} entries")
    lines: list[OrderLine] = []
    for index, item in enumerate(items):
        where = f"items[{index}]"
        if not isinstance(item, dict):
            raise OrderError(where, "must be an object")
        sku = item.get("sku")
        if not isinstance(sku, str):
            raise OrderError(f"{where}.sku", "is required and must be a string")
        product = _BY_SKU.get(sku)
        if product is None:
            raise OrderError(f"{where}.sku", f"unknown sku {sku[:64]!r}")
        qty = item.get("qty")
        if isinstance(qty, bool) or not isinstance(qty, int):
            raise OrderError(f"{where}.qty", "is required and must be an integer")
        if not 1 <= qty <= MAX_QTY:
            raise OrderError(f"{where}.qty", f"must be between 1 and {MAX_QTY}")
        lines.append(OrderLine(product, qty))
    return tuple(lines)


def new_order_id() -> str:
    return "ord_" + uuid.uuid4().hex


class OrderBook:
    """Orders by id, bounded in count (the oldest is forgotten first)."""

    def __init__(self, max_orders: int) -> None:
        self._max = max_orders
        self._orders: OrderedDict[str, Order] = OrderedDict()

    def add(self, order: Order) -> None:
        self._orders[order.id] = order
        while len(self._orders) > self._max:
            self._orders.popitem(last=False)

    def get(self, order_id: str) -> Order | None:
        return self._orders.get(order_id)
