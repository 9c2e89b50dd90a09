"""The shipped routes.yaml shadows POST /api/images from the real legacy stub to the real image service:
they match; a deliberately broken candidate is caught with the right kind of mismatch."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from legacy_stub.app import create_app as create_legacy_app
from legacy_stub.settings import Settings as LegacySettings
from tests.contract.implementations import SHADOW_KEY, imageservice_app
from tests.integration.proxy.conftest import Proxy, ProxyFactory, url_of
from tests.integration.proxy.shadow_fakes import outcomes, settle

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
REPO = Path(__file__).resolve().parents[4]
AUTH = {"Authorization": "Bearer s3cret"}


def shipped_config(legacy_url: str, candidate_url: str) -> dict[str, Any]:
    """routes.yaml as shipped, pointed at the test servers, with every request served by the primary."""
    doc = yaml.safe_load((REPO / "routes.yaml").read_text(encoding="utf-8"))
    doc["upstreams"]["legacy"]["url"] = legacy_url
    doc["upstreams"]["imageservice"]["url"] = candidate_url
    (images,) = [route for route in doc["routes"] if route["name"] == "images"]
    images["rollout"]["percent"] = 0
    images["flags"] = []
    return dict(doc)


@pytest.fixture
async def legacy(aiohttp_server: ServerFactory) -> TestServer:
    return await aiohttp_server(create_legacy_app(LegacySettings(image_delay_s=0, shadow_key=SHADOW_KEY)))


async def shadow_to(make_proxy: ProxyFactory, legacy: TestServer, candidate: TestServer) -> Proxy:
    return await make_proxy(shipped_config(url_of(legacy), url_of(candidate)))


def count(proxy: Proxy, family: str, **labels: str) -> float:
    return proxy.sample(family, route="images", **labels)


async def test_the_shipped_policy_finds_the_legacy_stub_and_the_image_service_equivalent(
    make_proxy: ProxyFactory, legacy: TestServer, aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    candidate = await aiohttp_server(imageservice_app(tmp_path))
    proxy = await shadow_to(make_proxy, legacy, candidate)

    created = await proxy.client.post("/api/images", json={"prompt": "a red fox", "n": 2, "size": "256x256"})
    refused = await proxy.client.post("/api/images", json={"prompt": "a red fox", "n": 9})
    fetched = await proxy.client.get(f"/api/images/{(await created.json())['id']}")
    await settle(proxy)

    assert (created.status, refused.status, fetched.status) == (201, 400, 200)
    assert (await created.json())["id"].startswith("leg_")  # the client got the monolith's answer
    assert outcomes(proxy) == {"compared": 2, "skipped_method": 1}
    assert count(proxy, "strangler_shadow_comparisons_total", result="match") == 2
    listed = await (await proxy.admin.get("/shadow/mismatches?route=images", headers=AUTH)).json()
    assert listed["mismatches"] == []
    assert (await (await candidate_client_get(candidate, "/api/images")).json())["items"] == []


async def candidate_client_get(server: TestServer, path: str) -> Any:
    import aiohttp

    session = aiohttp.ClientSession()
    try:
        response = await session.get(url_of(server) + path)
        await response.read()
        return response
    finally:
        await session.close()


def broken_app(generation: Callable[[dict[str, Any]], dict[str, Any]]) -> web.Application:
    """A candidate that answers like the contract, bent by `generation`."""

    async def generate(request: web.Request) -> web.StreamResponse:
        payload = await request.json()
        width = int(payload.get("size", "1024x1024").split("x")[0])  # as asked: the legacy stub agrees
        size = payload.get("size", "1024x1024")
        doc = {"id": "bad_1", "created": 1, "prompt": payload["prompt"], "size": size,
               "images": [{"name": f"bad_1_{i}.png", "url": f"/api/images/files/bad_1_{i}.png",
                           "content_type": "image/png", "width": width, "height": width, "bytes": 1,
                           "sha256": "0" * 64} for i in range(payload.get("n", 1))]}  # fmt: skip
        return web.json_response(generation(doc), status=201)

    app = web.Application()
    app.router.add_post("/api/images", generate)
    return app


def wrong_width(doc: dict[str, Any]) -> dict[str, Any]:
    doc["images"][0]["width"] = 1024
    return doc


def no_images(doc: dict[str, Any]) -> dict[str, Any]:
    del doc["images"]
    return doc


@pytest.mark.parametrize(
    ("bend", "kind", "detail"),
    [
        (wrong_width, "body_value", "body_value at images[0].width: 256 != 1024"),
        (no_images, "body_shape", "body_shape at images: present != missing"),
    ],
)
async def test_a_broken_candidate_is_reported_with_the_right_kind(
    make_proxy: ProxyFactory, legacy: TestServer, aiohttp_server: ServerFactory,
    bend: Callable[[dict[str, Any]], dict[str, Any]], kind: str, detail: str,
) -> None:  # fmt: skip
    proxy = await shadow_to(make_proxy, legacy, await aiohttp_server(broken_app(bend)))

    response = await proxy.client.post("/api/images", json={"prompt": "a red fox", "size": "256x256"})
    await settle(proxy)

    assert response.status == 201
    assert count(proxy, "strangler_shadow_comparisons_total", result="mismatch") == 1
    assert count(proxy, "strangler_shadow_mismatches_total", kind=kind) == 1
    listed = await (await proxy.admin.get("/shadow/mismatches?route=images&limit=5", headers=AUTH)).json()
    (kept,) = listed["mismatches"]
    assert [d["detail"] for d in kept["differences"]] == [detail]
    assert kept["primary"]["status"] == kept["candidate"]["status"] == 201
