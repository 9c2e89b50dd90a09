"""Fallback to the primary, the guard and the circuit breaker, with real upstream servers on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from tests.integration.proxy.conftest import (
    WAIT_S,
    ProxyFactory,
    Recorder,
    closed_port,
    config_dict,
    images_route,
    upstream_app,
    url_of,
    write_config,
)

TOKEN = {"Authorization": "Bearer s3cret"}
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


def failing_app(status: int, seen: list[tuple[str, bytes]]) -> web.Application:
    """A candidate that answers every request with `status`, recording what it received."""

    async def answer(request: web.Request) -> web.StreamResponse:
        seen.append((request.method, await request.read()))
        return web.json_response({"served_by": "new", "status": status}, status=status)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


async def legacy_and(aiohttp_server: ServerFactory, candidate: web.Application) -> tuple[str, str, Recorder]:
    recorder = Recorder("legacy")
    legacy = await aiohttp_server(upstream_app(recorder))
    new = await aiohttp_server(candidate)
    return url_of(legacy), url_of(new), recorder


def doc(legacy: str, new: str, **route: Any) -> dict[str, Any]:
    config = config_dict({"legacy": legacy, "new": new}, routes=[images_route(100, **route)])
    config["upstreams"]["new"]["circuit"] = {"failures": 1000}  # breaker out of the way unless asked
    return config


def errors(proxy: Any, kind: str) -> float:
    return float(proxy.sample("strangler_upstream_errors_total", route="images", upstream="new", kind=kind))


FALLBACK_ALL = {"when": ["connect_error", "timeout", "5xx", "404"]}


async def test_a_candidate_that_is_down_costs_the_client_nothing_on_a_route_with_fallback(
    make_proxy: ProxyFactory, aiohttp_server: ServerFactory
) -> None:
    recorder = Recorder("legacy")
    legacy = url_of(await aiohttp_server(upstream_app(recorder)))
    proxy = await make_proxy(doc(legacy, f"http://127.0.0.1:{closed_port()}", fallback=FALLBACK_ALL))
    response = await proxy.client.get("/api/images/1")
    assert response.status == 200
    assert (await response.json())["served_by"] == "legacy"
    response = await proxy.client.post("/api/images", data=b"a body to replay")  # the candidate got nothing
    assert (await response.json())["served_by"] == "legacy"
    assert recorder.seen[-1]["body_len"] == len(b"a body to replay")
    assert proxy.sample("strangler_fallbacks_total", route="images", reason="connect_error") == 2
    assert errors(proxy, "connect") == 2
    assert proxy.sample(
        "strangler_requests_total", route="images", upstream="legacy", role="primary", method="GET",
        code="200",
    ) == 1  # fmt: skip


async def test_a_5xx_of_the_candidate_is_replayed_for_reads_but_not_for_posts(
    make_proxy: ProxyFactory, aiohttp_server: ServerFactory
) -> None:
    seen: list[tuple[str, bytes]] = []
    legacy, new, _ = await legacy_and(aiohttp_server, failing_app(503, seen))
    proxy = await make_proxy(doc(legacy, new, fallback=FALLBACK_ALL))
    response = await proxy.client.get("/api/images")
    assert (response.status, (await response.json())["served_by"]) == (200, "legacy")
    response = await proxy.client.post("/api/images", data=b"{}")  # may have acted: never run twice
    assert (response.status, (await response.json())["served_by"]) == (503, "new")
    assert [method for method, _ in seen] == ["GET", "POST"]
    assert proxy.sample("strangler_fallbacks_total", route="images", reason="5xx") == 1


async def test_a_route_that_allows_it_replays_a_post_after_a_5xx_with_the_same_body(
    make_proxy: ProxyFactory, aiohttp_server: ServerFactory
) -> None:
    seen: list[tuple[str, bytes]] = []
    legacy, new, recorder = await legacy_and(aiohttp_server, failing_app(500, seen))
    proxy = await make_proxy(doc(legacy, new, fallback={**FALLBACK_ALL, "replay_non_idempotent": True}))
    response = await proxy.client.post("/api/images", data=b'{"prompt": "fox"}', headers={"X-Trace": "t1"})
    assert (await response.json())["served_by"] == "legacy"
    assert seen == [("POST", b'{"prompt": "fox"}')]
    assert recorder.seen[-1]["body_len"] == len(b'{"prompt": "fox"}')
    assert ("X-Trace", "t1") in recorder.seen[-1]["headers"]


async def test_a_404_falls_back_for_get_and_head_only(
    make_proxy: ProxyFactory, aiohttp_server: ServerFactory
) -> None:
    seen: list[tuple[str, bytes]] = []
    legacy, new, _ = await legacy_and(aiohttp_server, failing_app(404, seen))
    proxy = await make_proxy(doc(legacy, new, fallback={"when": ["404"]}))
    assert (await (await proxy.client.get("/api/images/leg_1")).json())["served_by"] == "legacy"
    assert (await proxy.client.head("/api/images/leg_1")).status == 200
    response = await proxy.client.delete("/api/images/leg_1")
    assert (response.status, (await response.json())["served_by"]) == (404, "new")
    assert proxy.sample("strangler_fallbacks_total", route="images", reason="404") == 2


async def test_a_body_larger_than_the_fallback_buffer_is_still_served_but_never_replayed(
    make_proxy: ProxyFactory, aiohttp_server: ServerFactory
) -> None:
    seen: list[tuple[str, bytes]] = []
    legacy, new, recorder = await legacy_and(aiohttp_server, failing_app(502, seen))
    proxy = await make_proxy(doc(legacy, new, fallback={"when": ["5xx"], "max_body_bytes": 10}))
    big = b"x" * 5000

    async def chunked() -> Any:
        for start in range(0, len(big), 1000):
            yield big[start : start + 1000]

    for body in (big, chunked()):  # announced length, and chunked (unknown until the end)
        response = await proxy.client.put("/api/images/1", data=body)
        assert (response.status, (await response.json())["served_by"]) == (502, "new")
    assert [len(body) for _, body in seen] == [5000, 5000]
    small = await proxy.client.put("/api/images/1", data=b"tiny")
    assert (await small.json())["served_by"] == "legacy"
    assert recorder.seen[-1]["body_len"] == 4


async def test_a_candidate_timeout_falls_back_for_reads(
    make_proxy: ProxyFactory, aiohttp_server: ServerFactory
) -> None:
    never = asyncio.Event()

    async def silent(_: web.Request) -> web.StreamResponse:
        await never.wait()  # the candidate accepts the request and never answers
        raise AssertionError("unreachable")

    candidate = web.Application()
    candidate.router.add_route("*", "/{tail:.*}", silent)
    legacy, new, _ = await legacy_and(aiohttp_server, candidate)
    config = doc(legacy, new, fallback={"when": ["timeout"]})
    config["upstreams"]["new"]["timeout_s"] = 0.2
    proxy = await make_proxy(config)
    try:
        response = await proxy.client.get("/api/images/1")
        assert (await response.json())["served_by"] == "legacy"
        assert proxy.sample("strangler_fallbacks_total", route="images", reason="timeout") == 1
    finally:
        never.set()


async def test_a_response_already_streaming_is_never_replaced(
    make_proxy: ProxyFactory, upstreams: dict[str, tuple[TestServer, Recorder]]
) -> None:
    urls = {name: url_of(server) for name, (server, _) in upstreams.items()}
    config = doc(urls["legacy"], urls["new"], fallback=FALLBACK_ALL, match={"path_prefix": "/"})
    config["upstreams"]["new"]["timeout_s"] = 0.2
    proxy = await make_proxy(config)
    response = await proxy.client.get("/idle-stream")  # 200 and a first chunk, then silence
    assert response.status == 200
    with pytest.raises(Exception):  # noqa: B017,PT011 - the client sees a cut body, whatever its type
        await response.read()
    assert proxy.sample("strangler_fallbacks_total", route="images", reason="timeout") == 0


async def _flip_guard(proxy: Any, n: int) -> None:
    for _ in range(n):
        await (await proxy.client.get("/api/images")).read()


async def test_the_guard_trips_on_the_error_rate_and_stays_tripped_until_reset(
    make_proxy: ProxyFactory, aiohttp_server: ServerFactory
) -> None:
    seen: list[tuple[str, bytes]] = []
    legacy, new, _ = await legacy_and(aiohttp_server, failing_app(500, seen))
    guard = {"max_error_rate": 0.5, "min_requests": 4, "window_s": 600}
    flags = [{"header": "X-Images-Backend", "equals": "new", "use": "candidate"}]
    config = doc(legacy, new, guard=guard, flags=flags)
    config["routes"].append({"name": "other", "match": {"path_prefix": "/other"}, "primary": "legacy"})
    proxy = await make_proxy(config)
    with capture_logs() as logs:
        await _flip_guard(proxy, 4)
    assert len(seen) == 4
    (tripped,) = [line for line in logs if line["event"] == "guard_tripped"]
    assert tripped["log_level"] == "error"
    assert tripped["route"] == "images"
    assert "rolled back to 0%" in tripped["reason"]
    assert proxy.sample("strangler_guard_tripped", route="images") == 1
    assert proxy.sample("strangler_rollout_percent", route="images") == 0
    forced = await proxy.client.get("/api/images", headers={"X-Images-Backend": "new"})
    assert (await forced.json())["served_by"] == "legacy"  # flags that force the candidate are ignored too
    assert len(seen) == 4
    routes = await (await proxy.admin.get("/routes", headers=TOKEN)).json()
    assert routes["routes"][0]["percent"] == 0
    assert routes["routes"][0]["guard"]["tripped"] is True

    config["routes"][1]["match"]["path_prefix"] = "/elsewhere"  # an unrelated edit
    write_config(proxy.config_path, config)
    assert (await proxy.admin.post("/reload", headers=TOKEN)).status == 200
    assert proxy.sample("strangler_guard_tripped", route="images") == 1
    assert proxy.sample("strangler_rollout_percent", route="images") == 0

    assert (await proxy.admin.post("/routes/images/guard/reset")).status == 401  # token required
    reset = await proxy.admin.post("/routes/images/guard/reset", headers=TOKEN)
    assert (await reset.json())["was_tripped"] is True
    assert proxy.sample("strangler_guard_tripped", route="images") == 0
    assert proxy.sample("strangler_rollout_percent", route="images") == 100
    await _flip_guard(proxy, 1)
    assert len(seen) == 5  # the candidate gets traffic again
    assert (await proxy.admin.post("/routes/nope/guard/reset", headers=TOKEN)).status == 404


async def test_editing_the_route_in_routes_yaml_resets_its_guard(
    make_proxy: ProxyFactory, aiohttp_server: ServerFactory
) -> None:
    seen: list[tuple[str, bytes]] = []
    legacy, new, _ = await legacy_and(aiohttp_server, failing_app(500, seen))
    config = doc(legacy, new, guard={"max_error_rate": 0.5, "min_requests": 2, "window_s": 600})
    proxy = await make_proxy(config)
    await _flip_guard(proxy, 2)
    assert proxy.sample("strangler_guard_tripped", route="images") == 1
    config["routes"][0]["rollout"]["percent"] = 50
    write_config(proxy.config_path, config)
    assert (await proxy.admin.post("/reload", headers=TOKEN)).status == 200
    assert proxy.sample("strangler_guard_tripped", route="images") == 0
    assert proxy.sample("strangler_rollout_percent", route="images") == 50


async def test_the_breaker_opens_after_consecutive_connection_failures_and_fails_fast(
    make_proxy: ProxyFactory, aiohttp_server: ServerFactory
) -> None:
    recorder = Recorder("legacy")
    legacy = url_of(await aiohttp_server(upstream_app(recorder)))
    config = doc(legacy, f"http://127.0.0.1:{closed_port()}", fallback={"when": ["connect_error"]})
    config["upstreams"]["new"]["circuit"] = {"failures": 3, "open_s": 600, "max_open_s": 600}
    proxy = await make_proxy(config)
    for _ in range(6):
        assert (await (await proxy.client.get("/api/images")).json())["served_by"] == "legacy"
    assert proxy.sample("strangler_circuit_open", upstream="new") == 1
    assert proxy.sample("strangler_circuit_transitions_total", upstream="new", state="open") == 1
    assert errors(proxy, "connect") == 3
    assert proxy.sample("strangler_circuit_rejected_total", upstream="new") == 3  # never tried
    assert proxy.sample("strangler_fallbacks_total", route="images", reason="circuit_open") == 3
    routes = await (await proxy.admin.get("/routes", headers=TOKEN)).json()
    assert routes["circuits"]["new"] == "open"


async def test_an_open_breaker_without_fallback_answers_502_at_once_and_a_probe_closes_it(
    make_proxy: ProxyFactory, aiohttp_server: ServerFactory
) -> None:
    port = closed_port()
    config = config_dict({"legacy": f"http://127.0.0.1:{port}"})
    config["upstreams"]["legacy"]["circuit"] = {"failures": 2, "open_s": 0.2}
    proxy = await make_proxy(config)
    for _ in range(3):
        response = await proxy.client.get("/x")
        assert response.status == 502
        assert (await response.json())["error"]["code"] == "upstream_unreachable"
    assert proxy.sample("strangler_circuit_rejected_total", upstream="legacy") == 1
    recorder = Recorder("legacy")
    runner = web.AppRunner(upstream_app(recorder))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()  # the upstream comes back on the same port
    try:
        async with asyncio.timeout(WAIT_S):
            while (await proxy.client.get("/x")).status != 200:  # after the back-off, the probe gets through
                await asyncio.sleep(0.05)
        assert proxy.sample("strangler_circuit_open", upstream="legacy") == 0
        assert proxy.sample("strangler_circuit_transitions_total", upstream="legacy", state="half_open") >= 1
        assert proxy.sample("strangler_circuit_transitions_total", upstream="legacy", state="closed") == 1
    finally:
        await runner.cleanup()
