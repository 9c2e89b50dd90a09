"""Through the running proxy: learned noise never hides a status difference, is visible, clearable and
dropped when the comparison changes; the shadow cost budget holds under a burst."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.integration.proxy.conftest import Proxy, ProxyFactory, config_dict, url_of, write_config
from tests.integration.proxy.shadow_fakes import Service, outcome, service_app, settle, shadow_route

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
AUTH = {"Authorization": "Bearer s3cret"}
NOISE = {"percent": 100, "methods": ["GET"]}


def flipping_primary(calls: list[int]) -> web.Application:
    """200, 503, 200, 503, ...: with the A/A repeat right after each live call, the client always gets
    a 200 and the noise pass always sees a 503. The body has the same shape either way, with a nonce."""

    async def answer(request: web.Request) -> web.StreamResponse:
        calls.append(1)
        status = 200 if len(calls) % 2 else 503
        return web.json_response({"stable": "same", "nonce": uuid.uuid4().hex}, status=status)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


def failing_candidate() -> web.Application:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.json_response({"stable": "same", "nonce": uuid.uuid4().hex}, status=500)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


async def noise_of(proxy: Proxy) -> dict[str, Any]:
    response = await proxy.admin.get("/shadow/noise?route=images", headers=AUTH)
    assert response.status == 200
    return dict((await response.json())["noise"]["images"])


async def flipping_setup(
    make_proxy: ProxyFactory, aiohttp_server: ServerFactory
) -> tuple[Proxy, dict[str, Any]]:
    calls: list[int] = []
    primary = await aiohttp_server(flipping_primary(calls))
    candidate = await aiohttp_server(failing_candidate())
    doc = config_dict({"legacy": url_of(primary), "new": url_of(candidate)},
                      routes=[shadow_route({"noise_baseline": NOISE})])  # fmt: skip
    return await make_proxy(doc), doc


async def test_a_primary_flipping_200_and_503_never_teaches_the_status_as_noise(
    make_proxy: ProxyFactory, aiohttp_server: ServerFactory
) -> None:
    proxy, _ = await flipping_setup(make_proxy, aiohttp_server)

    for _ in range(8):
        assert (await proxy.client.get("/api/images/x")).status == 200
        await settle(proxy)  # one request at a time: live call, then the A/A repeat

    assert proxy.sample("strangler_shadow_mismatches_total", route="images", kind="status") == 8
    assert proxy.sample("strangler_shadow_comparisons_total", route="images", result="match") == 0
    learned = await noise_of(proxy)
    assert learned["pairs"] == 8
    assert [entry["path"] for entry in learned["paths"]] == ["nonce"]  # the body value, never the status
    assert learned["paths"][0]["pairs"] == 8
    assert learned["paths"][0]["learned_at"].endswith("+00:00")


async def test_learned_noise_can_be_cleared_and_is_dropped_when_the_comparison_changes(
    make_proxy: ProxyFactory, aiohttp_server: ServerFactory
) -> None:
    proxy, doc = await flipping_setup(make_proxy, aiohttp_server)
    await proxy.client.get("/api/images/x")
    await settle(proxy)
    assert [e["path"] for e in (await noise_of(proxy))["paths"]] == ["nonce"]

    assert (await proxy.admin.post("/shadow/noise/reset?route=images")).status == 401
    missing = await proxy.admin.post("/shadow/noise/reset", headers=AUTH)
    assert (missing.status, (await missing.json())["error"]["code"]) == (400, "invalid_parameter")
    unknown = await proxy.admin.post("/shadow/noise/reset?route=nope", headers=AUTH)
    assert (unknown.status, (await unknown.json())["error"]["code"]) == (404, "unknown_route")
    cleared = await proxy.admin.post("/shadow/noise/reset?route=images", headers=AUTH)
    assert (cleared.status, await cleared.json()) == (200, {"route": "images", "forgotten": 1})
    assert await noise_of(proxy) == {"pairs": 0, "paths": []}

    await proxy.client.get("/api/images/x")
    await settle(proxy)
    assert (await noise_of(proxy))["paths"] != []
    unchanged = await proxy.admin.post("/reload", headers=AUTH)  # same file: the noise stays
    assert unchanged.status == 200
    assert (await noise_of(proxy))["paths"] != []

    doc["routes"][0]["shadow"]["compare"] = {"ignore": ["stable"]}
    write_config(proxy.config_path, doc)
    assert (await proxy.admin.post("/reload", headers=AUTH)).status == 200
    assert await noise_of(proxy) == {"pairs": 0, "paths": []}


async def test_the_budget_holds_under_a_burst_and_every_skip_is_counted(
    make_proxy: ProxyFactory, aiohttp_server: ServerFactory
) -> None:
    legacy, new = Service("legacy"), Service("new")
    doc = config_dict(
        {"legacy": url_of(await aiohttp_server(service_app(legacy))),
         "new": url_of(await aiohttp_server(service_app(new)))},
        routes=[shadow_route({"methods": ["POST"], "max_per_minute": 5})],
    )  # fmt: skip
    proxy = await make_proxy(doc)
    started = time.monotonic()

    answers = await asyncio.gather(*(proxy.client.post("/api/images", data=b"{}") for _ in range(30)))
    await settle(proxy)
    elapsed = time.monotonic() - started

    assert [a.status for a in answers] == [200] * 30  # every client is served by the primary
    assert len(legacy.seen) == 30
    compared, skipped = outcome(proxy, "compared"), outcome(proxy, "skipped_budget")
    assert compared + skipped == 30
    assert len(new.seen) == compared
    assert 5 <= compared <= 5 + int(elapsed * 5 / 60)  # the burst, plus at most what refilled meanwhile
