from __future__ import annotations

import pytest

from legacy_stub.orders import CATALOG, Order, OrderError, parse_order_lines


def test_valid_lines_are_parsed_and_totalled_in_cents() -> None:
    lines = parse_order_lines({"items": [{"sku": "IMG-DIGITAL", "qty": 3}, {"sku": "IMG-CANVAS", "qty": 1}]})
    order = Order(id="ord_1", created=0, lines=lines)

    assert order.total_cents == 3 * 499 + 12900
    assert order.to_json()["total"] == 143.97


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (None, "body"),
        ({"items": "x"}, "items"),
        ({"items": [{"sku": "IMG-DIGITAL", "qty": 1}] * 101}, "items"),
        ({"items": [{"sku": "", "qty": 1}]}, "items[0].sku"),
        ({"items": [{"sku": "IMG-DIGITAL", "qty": 2.0}]}, "items[0].qty"),
        ({"items": [{"sku": "IMG-DIGITAL", "qty": -1}]}, "items[0].qty"),
    ],
)
def test_a_bad_order_names_the_field_at_fault(payload: object, field: str) -> None:
    with pytest.raises(OrderError) as exc_info:
        parse_order_lines(payload)
    assert exc_info.value.field == field


def test_every_catalog_sku_is_unique_and_priced() -> None:
    assert len({p.sku for p in CATALOG}) == len(CATALOG)
    assert all(p.price_cents > 0 for p in CATALOG)
