"""Idempotency-Key: a retried request is answered, not generated again; a reused key is refused."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from strangler_common.contract import validate

Client = TestClient[Any, Any]


async def post(client: Client, payload: dict[str, Any], key: str) -> tuple[int, dict[str, Any]]:
    response = await client.post("/api/images", json=payload, headers={"Idempotency-Key": key})
    body: dict[str, Any] = await response.json()
    return response.status, body


async def stored_ids(client: Client) -> list[str]:
    response = await client.get("/api/images", params={"limit": "100"})
    return [item["id"] for item in (await response.json())["items"]]


async def test_the_same_key_and_body_replays_the_first_response_without_generating_again(
    image_api: Client,
) -> None:
    payload = {"prompt": "a teapot", "n": 2, "size": "256x256"}

    first = await post(image_api, payload, "key-replay-1")
    second = await post(image_api, payload, "key-replay-1")

    assert first[0] == second[0] == 201
    validate("Generation", second[1])
    assert second[1] == first[1]
    assert await stored_ids(image_api) == [first[1]["id"]]


async def test_the_same_key_with_another_body_is_refused_with_422(image_api: Client) -> None:
    status, original = await post(image_api, {"prompt": "a teapot", "size": "256x256"}, "key-reuse")
    assert status == 201

    status, body = await post(image_api, {"prompt": "a kettle", "size": "256x256"}, "key-reuse")

    assert status == 422
    validate("Error", body)
    assert body["error"]["code"] == "idempotency_key_reused"
    assert await stored_ids(image_api) == [original["id"]]


async def test_different_keys_generate_separately(image_api: Client) -> None:
    payload = {"prompt": "a teapot", "size": "256x256"}

    _, first = await post(image_api, payload, "key-a")
    _, second = await post(image_api, payload, "key-b")

    assert first["id"] != second["id"]
    assert sorted(await stored_ids(image_api)) == sorted([first["id"], second["id"]])


async def test_a_refused_request_does_not_use_up_its_key(image_api: Client) -> None:
    status, _ = await post(image_api, {"prompt": ""}, "key-after-400")
    assert status == 400

    status, body = await post(image_api, {"prompt": "now valid", "size": "256x256"}, "key-after-400")

    assert status == 201
    validate("Generation", body)
