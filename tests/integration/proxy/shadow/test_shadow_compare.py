"""Through the running proxy: each kind of difference is counted and kept, ignored fields are not,
the noise baseline learns what is random in the primary, and the admin listener shows the mismatches."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.integration.proxy.conftest import Proxy, ProxyFactory, config_dict, url_of
from tests.integration.proxy.shadow_fakes import Service, outcomes, service_app, settle, shadow_route

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
AUTH = {"Authorization": "Bearer s3cret"}
CONTRACT = {
    "headers": ["content-type"],
    "ignore": ["id", "created", "images[*].url", "images[*].name", "images[*].sha256", "images[*].bytes"],
}


@pytest.fixture
async def pair(aiohttp_server: ServerFactory) -> tuple[TestServer, Service, TestServer, Service]:
    legacy, new = Service("legacy"), Service("new")
    return await aiohttp_server(service_app(legacy)), legacy, await aiohttp_server(service_app(new)), new


async def shadowed(
    make_proxy: ProxyFactory, pair: tuple[TestServer, Service, TestServer, Service], **shadow: Any
) -> Proxy:
    legacy_server, _, new_server, _ = pair
    compare = {**CONTRACT, **shadow.pop("compare", {})}
    doc = config_dict({"legacy": url_of(legacy_server), "new": url_of(new_server)},
                      routes=[shadow_route({"compare": compare, **shadow})])  # fmt: skip
    return await make_proxy(doc)


def mismatches(proxy: Proxy, kind: str) -> float:
    return proxy.sample("strangler_shadow_mismatches_total", route="images", kind=kind)


def results(proxy: Proxy) -> tuple[float, float]:
    match = proxy.sample("strangler_shadow_comparisons_total", route="images", result="match")
    return match, proxy.sample("strangler_shadow_comparisons_total", route="images", result="mismatch")


async def recorded(proxy: Proxy, **query: str) -> list[dict[str, Any]]:
    response = await proxy.admin.get("/shadow/mismatches", params={"route": "images", **query}, headers=AUTH)
    assert response.status == 200
    body = await response.json()
    return list(body["mismatches"])


async def test_answers_that_differ_only_in_ignored_fields_match(
    make_proxy: ProxyFactory, pair: tuple[TestServer, Service, TestServer, Service]
) -> None:
    image = {"name": "img_7_0.png", "url": "/api/images/files/img_7_0.png", "content_type": "image/png",
             "width": 512, "height": 512, "bytes": 70000, "sha256": "b" * 64}  # fmt: skip
    pair[3].patch = {"id": "img_7", "created": 1800000000, "images": [image]}
    proxy = await shadowed(make_proxy, pair)

    await proxy.client.post("/api/images", json={"prompt": "a red fox"})
    await settle(proxy)

    assert outcomes(proxy) == {"compared": 1}
    assert results(proxy) == (1, 0)
    assert await recorded(proxy) == []
    assert proxy.sample("strangler_shadow_latency_ratio_count", route="images") == 1


@pytest.mark.parametrize(
    ("bend", "kind", "detail"),
    [
        ({"status": 500}, "status", "status at (status): 200 != 500"),
        ({"content_type": "application/vnd.api+json"}, "header",
         'header at content-type: "application/json; charset=utf-8" != '
         '"application/vnd.api+json; charset=utf-8"'),
        ({"patch": {"prompt": None}}, "body_shape", "body_shape at prompt: string != null"),
        ({"patch": {"size": "1024x1024"}}, "body_value", 'body_value at size: "512x512" != "1024x1024"'),
    ],
)
async def test_each_kind_of_json_difference_is_counted_and_kept(
    make_proxy: ProxyFactory, pair: tuple[TestServer, Service, TestServer, Service],
    bend: dict[str, Any], kind: str, detail: str,
) -> None:  # fmt: skip
    for name, value in bend.items():
        setattr(pair[3], name, value)
    proxy = await shadowed(make_proxy, pair)

    response = await proxy.client.get("/api/images/gen_1", headers={"X-Request-ID": "bent-1"})
    assert response.status == 200
    await settle(proxy)

    assert results(proxy) == (0, 1)
    assert mismatches(proxy, kind) == 1
    (kept,) = await recorded(proxy)
    assert [d["detail"] for d in kept["differences"]] == [detail]
    assert (kept["request_id"], kept["method"], kept["path"]) == ("bent-1", "GET", "/api/images/gen_1")
    assert kept["primary"]["status"] == 200


async def test_images_are_compared_by_dimensions_unless_told_otherwise(
    make_proxy: ProxyFactory, pair: tuple[TestServer, Service, TestServer, Service]
) -> None:
    pair[3].image_size = (16, 8)
    proxy = await shadowed(make_proxy, pair)
    await proxy.client.get("/api/image")
    await settle(proxy)
    assert mismatches(proxy, "image") == 1
    assert [d["detail"] for d in (await recorded(proxy))[0]["differences"]] == [
        "image at (body): PNG 8x8 != PNG 16x8"
    ]

    told = await shadowed(make_proxy, pair, compare={"images": "off"})
    await told.client.get("/api/image")
    await settle(told)
    assert results(told) == (1, 0)


async def test_other_bodies_must_be_byte_identical(
    make_proxy: ProxyFactory, pair: tuple[TestServer, Service, TestServer, Service]
) -> None:
    proxy = await shadowed(make_proxy, pair)
    await proxy.client.get("/api/text")
    await settle(proxy)  # the copy starts after the client's answer: let it finish before the change
    pair[3].text = b"plain text answer!"
    await proxy.client.get("/api/text")
    await settle(proxy)

    assert results(proxy) == (1, 1)
    assert mismatches(proxy, "body_value") == 1


async def test_the_noise_baseline_removes_a_field_that_is_random_in_the_primary(
    make_proxy: ProxyFactory, pair: tuple[TestServer, Service, TestServer, Service]
) -> None:
    without = await shadowed(make_proxy, pair)
    await without.client.get("/api/nonce")
    await settle(without)
    assert mismatches(without, "body_value") == 1

    proxy = await shadowed(make_proxy, pair, noise_baseline={"percent": 100, "methods": ["GET"]})
    for _ in range(3):
        assert (await proxy.client.get("/api/nonce")).status == 200
    await settle(proxy)

    assert results(proxy) == (3, 0)
    assert mismatches(proxy, "noise") == 3
    assert mismatches(proxy, "body_value") == 0
    assert len(pair[1].seen) == 1 + 3 * 2  # the first proxy's request, then each request twice (A/A)


async def test_noise_never_hides_a_real_difference_elsewhere(
    make_proxy: ProxyFactory, pair: tuple[TestServer, Service, TestServer, Service]
) -> None:
    pair[3].status = 404
    proxy = await shadowed(make_proxy, pair, noise_baseline={"percent": 100})
    await proxy.client.get("/api/nonce")  # the nonce is noise; the status is not
    await settle(proxy)

    (kept,) = await recorded(proxy)
    assert [d["kind"] for d in kept["differences"]] == ["status"]
    assert [d["path"] for d in kept["noise"]] == ["nonce"]
    assert (mismatches(proxy, "status"), mismatches(proxy, "noise")) == (1, 1)


async def test_the_mismatch_endpoint_needs_the_token_and_checks_its_parameters(
    make_proxy: ProxyFactory, pair: tuple[TestServer, Service, TestServer, Service]
) -> None:
    pair[3].status = 500
    proxy = await shadowed(make_proxy, pair, keep_mismatches=3)
    for i in range(5):
        await proxy.client.get(f"/api/images/{i}", headers={"X-Request-ID": f"m{i}"})
    await settle(proxy)

    assert [m["request_id"] for m in await recorded(proxy)] == ["m4", "m3", "m2"]
    assert [m["request_id"] for m in await recorded(proxy, limit="1")] == ["m4"]
    assert (await proxy.admin.get("/shadow/mismatches?route=images")).status == 401
    wrong = await proxy.admin.get("/shadow/mismatches", headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401
    for query, code in [("route=images&limit=0", "invalid_parameter"), ("limit=abc", "invalid_parameter"),
                        ("limit=100000", "invalid_parameter"), ("route=nope", "unknown_route")]:
        response = await proxy.admin.get(f"/shadow/mismatches?{query}", headers=AUTH)
        assert response.status in (400, 404)
        assert (await response.json())["error"]["code"] == code
    everything = await (await proxy.admin.get("/shadow/mismatches", headers=AUTH)).json()
    assert len(everything["mismatches"]) == 3
