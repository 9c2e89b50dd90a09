"""GET /api/images/{id}, GET /api/images/files/{name}, GET /api/images?limit=N, and their 404s/400s."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from strangler_common.contract import validate

Client = TestClient[Any, Any]


async def generate(client: Client, prompt: str) -> dict[str, Any]:
    response = await client.post("/api/images", json={"prompt": prompt, "size": "256x256"})
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    body: dict[str, Any] = await response.json()
    validate("Error", body)
    error: dict[str, Any] = body["error"]
    return error


def validate_page(body: dict[str, Any]) -> list[dict[str, Any]]:
    assert set(body) == {"items"}
    for item in body["items"]:
        validate("Generation", item)
    items: list[dict[str, Any]] = body["items"]
    return items


async def test_a_generation_can_be_read_back_by_id_exactly_as_created(image_api: Client) -> None:
    created = await generate(image_api, "a paper boat")

    response = await image_api.get(f"/api/images/{created['id']}")

    assert response.status == 200
    body = await response.json()
    validate("Generation", body)
    assert body == created


async def test_the_list_is_newest_first_and_honours_the_limit(image_api: Client) -> None:
    ids = [(await generate(image_api, f"picture {i}"))["id"] for i in range(3)]

    response = await image_api.get("/api/images", params={"limit": "2"})
    assert response.status == 200
    assert [item["id"] for item in validate_page(await response.json())] == [ids[2], ids[1]]

    response = await image_api.get("/api/images")
    assert [item["id"] for item in validate_page(await response.json())] == ids[::-1]


async def test_an_empty_service_lists_no_items(image_api: Client) -> None:
    response = await image_api.get("/api/images")

    assert response.status == 200
    assert validate_page(await response.json()) == []


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1.5"])
async def test_a_bad_limit_is_refused_naming_limit(image_api: Client, limit: str) -> None:
    error = await error_of(await image_api.get("/api/images", params={"limit": limit}), 400)

    assert error["code"] == "invalid_request"
    assert "limit" in error["message"]


async def test_an_unknown_generation_id_is_404_not_found(image_api: Client) -> None:
    error = await error_of(await image_api.get("/api/images/does-not-exist"), 404)

    assert error["code"] == "not_found"


async def test_an_unknown_file_name_is_404_not_found(image_api: Client) -> None:
    await generate(image_api, "something stored")

    error = await error_of(await image_api.get("/api/images/files/nope-0.png"), 404)

    assert error["code"] == "not_found"
