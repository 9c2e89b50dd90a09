"""The monolith's business routes: storefront, catalog, orders, health, and its JSON errors."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from legacy_stub.app import create_app
from legacy_stub.settings import Settings

Client = TestClient[Any, Any]


@pytest.fixture
async def client(aiohttp_client: Any) -> Client:
    result: Client = await aiohttp_client(create_app(Settings(image_delay_s=0.0)))
    return result


async def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    error: dict[str, Any] = (await response.json())["error"]
    assert isinstance(error["code"], str)
    assert isinstance(error["message"], str)
    return error


async def test_the_storefront_is_an_html_page_listing_the_catalog(client: Client) -> None:
    response = await client.get("/")

    assert response.status == 200
    assert response.content_type == "text/html"
    page = await response.text()
    assert page.startswith("<!doctype html>")
    assert "IMG-PRINT-S" in page


async def test_healthz_says_ok(client: Client) -> None:
    response = await client.get("/healthz")

    assert response.status == 200
    assert (await response.json())["status"] == "ok"


async def test_the_catalog_lists_items_with_sku_name_and_price(client: Client) -> None:
    response = await client.get("/api/catalog")

    assert response.status == 200
    items = (await response.json())["items"]
    assert items
    for item in items:
        assert set(item) == {"sku", "name", "price"}
        assert isinstance(item["price"], float | int)


async def test_an_order_is_created_with_an_id_and_can_be_read_back(client: Client) -> None:
    response = await client.post(
        "/api/orders", json={"items": [{"sku": "IMG-DIGITAL", "qty": 3}, {"sku": "IMG-PRINT-S", "qty": 1}]}
    )

    assert response.status == 201
    order = await response.json()
    assert order["id"]
    assert response.headers["Location"] == f"/api/orders/{order['id']}"
    assert [(line["sku"], line["qty"]) for line in order["items"]] == [("IMG-DIGITAL", 3), ("IMG-PRINT-S", 1)]
    assert order["total"] == pytest.approx(3 * 4.99 + 19.99)

    fetched = await client.get(f"/api/orders/{order['id']}")
    assert fetched.status == 200
    assert await fetched.json() == order


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"items": [{"sku": "NOPE", "qty": 1}]}, "items[0].sku"),
        ({"items": [{"sku": "IMG-DIGITAL", "qty": 1}, {"sku": 7, "qty": 1}]}, "items[1].sku"),
        ({"items": [{"sku": "IMG-DIGITAL", "qty": 0}]}, "items[0].qty"),
        ({"items": [{"sku": "IMG-DIGITAL", "qty": 101}]}, "items[0].qty"),
        ({"items": [{"sku": "IMG-DIGITAL", "qty": "2"}]}, "items[0].qty"),
        ({"items": [{"sku": "IMG-DIGITAL", "qty": True}]}, "items[0].qty"),
        ({"items": [{"sku": "IMG-DIGITAL"}]}, "items[0].qty"),
        ({"items": ["IMG-DIGITAL"]}, "items[0]"),
        ({"items": []}, "items"),
        ({"items": {"sku": "IMG-DIGITAL"}}, "items"),
        ({}, "items"),
        ([], "body"),
    ],
)
async def test_a_bad_order_is_refused_with_400_naming_the_field(
    client: Client, payload: Any, field: str
) -> None:
    error = await error_of(await client.post("/api/orders", json=payload), 400)

    assert error["code"] == "invalid_request"
    assert error["message"].startswith(f"{field}:")


async def test_an_order_that_is_not_json_is_refused_with_415(client: Client) -> None:
    form = {"Content-Type": "text/plain"}
    response = await client.post("/api/orders", data="sku=IMG-DIGITAL", headers=form)

    assert (await error_of(response, 415))["code"] == "unsupported_media_type"


async def test_malformed_order_json_is_refused_with_400(client: Client) -> None:
    response = await client.post("/api/orders", data=b"{", headers={"Content-Type": "application/json"})

    assert (await error_of(response, 400))["code"] == "invalid_request"


async def test_an_unknown_order_is_404_not_found(client: Client) -> None:
    error = await error_of(await client.get("/api/orders/ord_missing"), 404)

    assert error["code"] == "not_found"
    assert "ord_missing" in error["message"]


async def test_an_unknown_route_and_a_wrong_method_get_json_errors(client: Client) -> None:
    assert (await error_of(await client.get("/no/such/page"), 404))["code"] == "not_found"
    wrong = await client.delete("/api/catalog")
    assert (await error_of(wrong, 405))["code"] == "method_not_allowed"
    assert "GET" in wrong.headers["Allow"]


async def test_a_request_id_is_returned_as_given_or_generated(client: Client) -> None:
    given = await client.get("/healthz", headers={"X-Request-ID": "req-abc-123"})
    minted = await client.get("/healthz")

    assert given.headers["X-Request-ID"] == "req-abc-123"
    assert len(minted.headers["X-Request-ID"]) >= 16


async def test_metrics_are_served_in_the_prometheus_text_format(client: Client) -> None:
    await client.post("/api/orders", json={"items": [{"sku": "IMG-DIGITAL", "qty": 1}]})

    response = await client.get("/metrics")

    assert response.status == 200
    assert response.content_type == "text/plain"
    text = await response.text()
    assert "legacy_orders_created_total 1.0" in text
    assert "# TYPE legacy_image_generation_seconds histogram" in text
