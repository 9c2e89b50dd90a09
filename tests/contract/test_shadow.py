"""X-Strangler-Shadow: 1 marks the proxy's mirrored copy: answer it, but keep nothing and claim no key."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from strangler_common.contract import validate

Client = TestClient[Any, Any]
SHADOW = {"X-Strangler-Shadow": "1"}


async def test_a_shadow_request_is_answered_like_a_real_one_but_nothing_is_stored(image_api: Client) -> None:
    response = await image_api.post(
        "/api/images", json={"prompt": "a shadow", "n": 2, "size": "256x256"}, headers=SHADOW
    )

    assert response.status == 201
    body = await response.json()
    validate("Generation", body)
    assert len(body["images"]) == 2
    assert (await image_api.get(f"/api/images/{body['id']}")).status == 404
    for image in body["images"]:
        assert (await image_api.get(image["url"])).status == 404
    assert (await (await image_api.get("/api/images")).json())["items"] == []


async def test_a_shadow_request_claims_no_idempotency_key(image_api: Client) -> None:
    shadow = await image_api.post(
        "/api/images",
        json={"prompt": "the mirrored body", "size": "256x256"},
        headers={**SHADOW, "Idempotency-Key": "shared-key"},
    )
    assert shadow.status == 201

    real = await image_api.post(
        "/api/images",
        json={"prompt": "another body", "size": "256x256"},
        headers={"Idempotency-Key": "shared-key"},
    )

    assert real.status == 201
    assert (await real.json())["prompt"] == "another body"


async def test_a_shadow_request_is_still_validated(image_api: Client) -> None:
    response = await image_api.post("/api/images", json={"prompt": "x", "n": 9}, headers=SHADOW)

    assert response.status == 400
    body = await response.json()
    validate("Error", body)
    assert body["error"]["code"] == "invalid_request"
