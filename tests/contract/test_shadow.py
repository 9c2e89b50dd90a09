"""The shadow marker: a copy signed by the proxy is answered but keeps nothing and claims no key; an
unsigned or forged marker is a normal request (stored, key claimed), and nothing in the answer says so."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from strangler_common.contract import validate
from strangler_common.shadowmark import sign
from tests.contract.implementations import SHADOW_KEY

Client = TestClient[Any, Any]


def signed(request_id: str, key: bytes = SHADOW_KEY, at: float | None = None) -> dict[str, str]:
    marker = sign(key, request_id, now=time.time() if at is None else at)
    return {"X-Request-ID": request_id, "X-Strangler-Shadow": marker}


def forgeries(request_id: str) -> list[dict[str, str]]:
    genuine = signed("another-request")["X-Strangler-Shadow"]
    return [
        {"X-Request-ID": request_id, "X-Strangler-Shadow": "1"},
        {"X-Request-ID": request_id, "x-strangler-shadow": "true"},
        {"X-Request-ID": request_id, "X-Strangler-Shadow": genuine},  # someone else's signature
        signed(request_id, key=b"a-guessed-key-that-is-long-enough!!"),
        signed(request_id, at=time.time() - 3600),  # a captured marker, replayed an hour later
    ]


async def test_a_signed_shadow_copy_is_answered_like_a_real_one_but_nothing_is_stored(
    image_api: Client,
) -> None:
    response = await image_api.post(
        "/api/images", json={"prompt": "a shadow", "n": 2, "size": "256x256"}, headers=signed("copy-1")
    )

    assert response.status == 201
    body = await response.json()
    validate("Generation", body)
    assert len(body["images"]) == 2
    assert (await image_api.get(f"/api/images/{body['id']}")).status == 404
    for image in body["images"]:
        assert (await image_api.get(image["url"])).status == 404
    assert (await (await image_api.get("/api/images")).json())["items"] == []


async def test_a_signed_shadow_copy_claims_no_idempotency_key(image_api: Client) -> None:
    shadow = await image_api.post(
        "/api/images",
        json={"prompt": "the mirrored body", "size": "256x256"},
        headers={**signed("copy-2"), "Idempotency-Key": "shared-key"},
    )
    assert shadow.status == 201

    real = await image_api.post(
        "/api/images",
        json={"prompt": "another body", "size": "256x256"},
        headers={"Idempotency-Key": "shared-key"},
    )

    assert real.status == 201
    assert (await real.json())["prompt"] == "another body"


@pytest.mark.parametrize("which", range(5))
async def test_a_forged_marker_is_a_normal_request_stored_with_its_key_claimed(
    image_api: Client, which: int
) -> None:
    request_id = uuid.uuid4().hex
    forged = forgeries(request_id)[which]
    first = await image_api.post(
        "/api/images", json={"prompt": "forged", "size": "256x256"},
        headers={**forged, "Idempotency-Key": f"k-{which}"},
    )  # fmt: skip
    assert first.status == 201
    body = await first.json()
    assert (await image_api.get(f"/api/images/{body['id']}")).status == 200
    assert (await image_api.get(body["images"][0]["url"])).status == 200

    # The key was claimed: the same key with another body is refused, as for any request.
    again = await image_api.post(
        "/api/images", json={"prompt": "something else", "size": "256x256"},
        headers={**forged, "Idempotency-Key": f"k-{which}"},
    )  # fmt: skip
    assert again.status == 422
    assert (await again.json())["error"]["code"] == "idempotency_key_reused"


async def test_every_marker_is_counted_by_verdict(image_api: Client) -> None:
    for headers in [signed("copy-3"), *forgeries("rid-4")]:
        await image_api.post("/api/images", json={"prompt": "p", "size": "256x256"}, headers=headers)

    text = await (await image_api.get("/metrics")).text()
    counted = {
        line.split('verdict="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if "_shadow_markers_total{" in line
    }
    assert counted == {"signed": 1.0, "unsigned": 2.0, "forged": 2.0, "expired": 1.0}


async def test_a_shadow_copy_is_still_validated(image_api: Client) -> None:
    response = await image_api.post("/api/images", json={"prompt": "x", "n": 9}, headers=signed("copy-5"))

    assert response.status == 400
    body = await response.json()
    validate("Error", body)
    assert body["error"]["code"] == "invalid_request"


@pytest.fixture(params=["legacy", "imageservice"])
async def keyless_api(request: pytest.FixtureRequest, tmp_path: Any, aiohttp_client: Any) -> Client:
    """An implementation started without STRANGLER_SHADOW_KEY."""
    if request.param == "legacy":
        from legacy_stub.app import create_app as legacy
        from legacy_stub.settings import Settings as LegacySettings

        return await aiohttp_client(legacy(LegacySettings(image_delay_s=0.0)))
    from imageservice.entrypoints.http import create_app
    from imageservice.settings import Settings

    return await aiohttp_client(create_app(Settings(data_dir=tmp_path / "imageservice")))


async def test_without_a_key_even_a_genuine_marker_is_ignored(keyless_api: Client) -> None:
    response = await keyless_api.post(
        "/api/images", json={"prompt": "p", "size": "256x256"}, headers=signed("copy-6")
    )
    assert response.status == 201
    assert (await keyless_api.get(f"/api/images/{(await response.json())['id']}")).status == 200
    text = await (await keyless_api.get("/metrics")).text()
    assert '_shadow_markers_total{verdict="ignored"} 1.0' in text
