"""Data during the migration, against the real legacy stub and the real image service behind the shipped
routes.yaml: images generated on either side are found whatever the percentage, moved either way."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.contract.implementations import imageservice_app, legacy_app
from tests.integration.proxy.conftest import Proxy, ProxyFactory, url_of, write_config

REPO = Path(__file__).resolve().parents[4]
TOKEN = {"Authorization": "Bearer s3cret"}
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


def shipped(legacy: str, imageservice: str, percent: float) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((REPO / "routes.yaml").read_text(encoding="utf-8"))
    doc["upstreams"]["legacy"]["url"] = legacy
    doc["upstreams"]["imageservice"]["url"] = imageservice
    (images,) = [route for route in doc["routes"] if route["name"] == "images"]
    images["rollout"]["percent"] = percent
    images.pop("shadow", None)  # not under test here: mirrored copies store nothing anyway
    return doc


async def move_to(proxy: Proxy, doc: dict[str, Any], percent: float) -> None:
    doc["routes"][0]["rollout"]["percent"] = percent
    write_config(proxy.config_path, doc)
    response = await proxy.admin.post("/reload", headers=TOKEN)
    assert (await response.json())["changed"] is True


async def fetch_everything(proxy: Proxy, generations: dict[str, dict[str, Any]]) -> None:
    """Every generation and every image file, as several different users, answers 200 with the same data."""
    for user in ("u-1", "u-2", "u-3", "u-4"):
        headers = {"X-User-Id": user}
        for generation_id, created in generations.items():
            response = await proxy.client.get(f"/api/images/{generation_id}", headers=headers)
            assert response.status == 200, (generation_id, await response.text())
            assert (await response.json())["id"] == generation_id
            for image in created["images"]:
                file = await proxy.client.get(image["url"], headers=headers)
                assert file.status == 200, image["url"]
                assert file.content_type == "image/png"
                assert (await file.read())[:8] == b"\x89PNG\r\n\x1a\n"


async def test_images_generated_on_either_side_are_found_after_the_percentage_moves_both_ways(
    make_proxy: ProxyFactory, aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    legacy = await aiohttp_server(legacy_app(tmp_path))
    imageservice = await aiohttp_server(imageservice_app(tmp_path))
    doc = shipped(url_of(legacy), url_of(imageservice), 0)
    proxy = await make_proxy(doc)
    generations: dict[str, dict[str, Any]] = {}

    async def generate(user: str) -> str:
        response = await proxy.client.post(
            "/api/images", json={"prompt": f"a fox for {user}", "n": 1, "size": "256x256"},
            headers={"X-User-Id": user},
        )  # fmt: skip
        assert response.status == 201, await response.text()
        body = await response.json()
        generations[body["id"]] = body
        return str(body["id"])

    made = [await generate(f"u-{i}") for i in range(2)]
    assert all(gid.startswith("leg_") for gid in made)  # 0 %: the monolith mints them
    await move_to(proxy, doc, 100)
    made = [await generate(f"u-{i}") for i in range(2)]
    assert all(gid.startswith("img_") for gid in made)  # 100 %: the image service mints them
    await fetch_everything(proxy, generations)  # legacy's images after moving up
    await move_to(proxy, doc, 0)  # a full rollback
    await fetch_everything(proxy, generations)  # the image service's images after moving down
    await move_to(proxy, doc, 50)
    await fetch_everything(proxy, generations)
    reasons = {
        reason: proxy.sample("strangler_decisions_total", route="images", reason=reason)
        for reason in ("owner", "percent")
    }
    assert reasons["owner"] > 0  # reads went to the owner, not to whichever side the user is on
    assert proxy.sample("strangler_fallbacks_total", route="images", reason="404") == 0
