"""Request bodies cannot hold an upstream hostage: bodies are read whole before an upstream connection is
taken (memory, then a spool file), every upstream has a cap with a short queue, and what the proxy
holds comes out of budgets that are given back when the request ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.integration.proxy.conftest import (
    WAIT_S,
    Proxy,
    ProxyFactory,
    Recorder,
    config_dict,
    upstream_app,
    url_of,
)
from tests.integration.proxy.shadow_fakes import outcome, settle, shadow_route

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
MiB = 1024 * 1024


async def until(check: Callable[[], bool]) -> None:
    for _ in range(int(WAIT_S / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in time")


def held(proxy: Proxy, kind: str) -> float:
    return proxy.sample("strangler_buffer_bytes", kind=kind)


async def legacy(aiohttp_server: ServerFactory) -> tuple[str, Recorder]:
    recorder = Recorder("legacy")
    return url_of(await aiohttp_server(upstream_app(recorder))), recorder


async def test_no_upstream_is_contacted_until_the_whole_body_has_arrived(
    make_proxy: ProxyFactory, aiohttp_server: ServerFactory
) -> None:
    url, recorder = await legacy(aiohttp_server)
    proxy = await make_proxy(config_dict({"legacy": url}))
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"POST /orders HTTP/1.1\r\nHost: shop\r\nContent-Length: 10\r\nConnection: close\r\n\r\n"
                 b"12345")  # fmt: skip
    await writer.drain()

    await until(lambda: held(proxy, "memory") == 5)  # the proxy has the first half...
    assert recorder.seen == []  # ...and the upstream has seen nothing, not even the head

    writer.write(b"67890")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), WAIT_S)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200")
    [seen] = recorder.seen
    assert seen["body_len"] == 10
    assert ("Content-Length", "10") in seen["headers"]
    await until(lambda: held(proxy, "memory") == 0)  # given back when the request ended


async def test_a_chunked_or_large_body_is_spooled_and_arrives_whole(
    make_proxy: ProxyFactory, aiohttp_server: ServerFactory
) -> None:
    url, _recorder = await legacy(aiohttp_server)
    proxy = await make_proxy(config_dict({"legacy": url}))
    big = bytes(range(256)) * 1024  # 256 KiB: over limits.body_buffer_bytes (64 KiB)

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 10_000):
            yield big[start : start + 10_000]

    for body in (big, chunked()):
        response = await proxy.client.post("/upload-check", data=body)
        assert response.status == 200
        assert (await response.json())["body_len"] == len(big)
    assert proxy.sample("strangler_buffer_bytes", kind="spool") == 0


async def test_a_client_that_gives_up_mid_body_leaves_nothing_held(
    make_proxy: ProxyFactory, aiohttp_server: ServerFactory
) -> None:
    url, recorder = await legacy(aiohttp_server)
    proxy = await make_proxy(config_dict({"legacy": url}))
    _, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"POST /x HTTP/1.1\r\nHost: shop\r\nContent-Length: 300000\r\n\r\n" + b"a" * 100_000)
    await writer.drain()
    await until(lambda: held(proxy, "spool") == 100_000)
    writer.close()
    await until(lambda: held(proxy, "spool") == 0)
    assert recorder.seen == []


async def test_when_neither_budget_can_hold_a_body_the_client_gets_503_busy(
    make_proxy: ProxyFactory, aiohttp_server: ServerFactory
) -> None:
    url, recorder = await legacy(aiohttp_server)
    doc = config_dict({"legacy": url})
    doc["limits"] = {"memory_budget_bytes": 1 * MiB, "spool_budget_bytes": 0}
    proxy = await make_proxy(doc)

    refused = await proxy.client.post("/x", data=b"b" * 200_000)  # must spool; the spool budget is 0
    small = await proxy.client.post("/x", data=b"b" * 1000)  # fits in memory

    assert refused.status == 503
    assert refused.headers["Retry-After"] == "1"
    assert (await refused.json())["error"]["code"] == "busy"
    assert small.status == 200
    assert [r["body_len"] for r in recorder.seen] == [1000]
    assert proxy.sample("strangler_buffer_refusals_total", use="busy") == 1


async def test_a_full_upstream_queues_briefly_then_answers_503_upstream_busy(
    make_proxy: ProxyFactory, aiohttp_server: ServerFactory
) -> None:
    url, recorder = await legacy(aiohttp_server)
    doc = config_dict({"legacy": url})
    doc["upstreams"]["legacy"].update({"max_connections": 1, "queue_timeout_s": 0.2})
    proxy = await make_proxy(doc)

    holding = asyncio.create_task(proxy.client.get("/hold"))
    await asyncio.wait_for(recorder.entered.wait(), WAIT_S)
    busy = await proxy.client.get("/catalog")
    assert busy.status == 503
    assert busy.headers["Retry-After"] == "1"
    body = await busy.json()
    assert body["error"]["code"] == "upstream_busy"
    assert "all 1 connections in use" in body["error"]["message"]
    assert proxy.sample("strangler_upstream_busy_total", route="default", upstream="legacy") == 1

    recorder.release.set()
    assert (await holding).status == 200
    assert (await proxy.client.get("/catalog")).status == 200  # the slot came back


async def test_a_queued_request_is_served_when_a_slot_frees(
    make_proxy: ProxyFactory, aiohttp_server: ServerFactory
) -> None:
    url, recorder = await legacy(aiohttp_server)
    doc = config_dict({"legacy": url})
    doc["upstreams"]["legacy"].update({"max_connections": 1, "queue_timeout_s": WAIT_S})
    proxy = await make_proxy(doc)

    holding = asyncio.create_task(proxy.client.get("/hold"))
    await asyncio.wait_for(recorder.entered.wait(), WAIT_S)
    queued = asyncio.create_task(proxy.client.get("/catalog"))
    await asyncio.sleep(0.05)
    assert not queued.done()
    recorder.release.set()

    assert (await holding).status == 200
    assert (await queued).status == 200
    assert proxy.sample("strangler_upstream_busy_total", route="default", upstream="legacy") == 0


async def test_a_shadow_copy_that_does_not_fit_the_memory_budget_is_skipped_and_counted(
    make_proxy: ProxyFactory, aiohttp_server: ServerFactory
) -> None:
    seen_by_candidate: list[int] = []

    def mirror(seen: list[int]) -> web.Application:
        async def answer(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            seen.append(len(body))
            return web.Response(body=body, content_type="application/octet-stream")

        app = web.Application(client_max_size=8 * MiB)
        app.router.add_route("*", "/{tail:.*}", answer)
        return app

    primary = url_of(await aiohttp_server(mirror([])))
    candidate = url_of(await aiohttp_server(mirror(seen_by_candidate)))
    doc = config_dict({"legacy": primary, "new": candidate},
                      routes=[shadow_route({"max_body_bytes": 4 * MiB})])  # fmt: skip
    doc["limits"] = {"memory_budget_bytes": 1 * MiB}
    proxy = await make_proxy(doc)

    # 700 KB each way: the request copy fits the 1 MiB budget, the request plus the answer do not
    response = await proxy.client.post("/api/echo", data=b"s" * 700_000)
    await settle(proxy)

    assert response.status == 200
    assert len(await response.read()) == 700_000  # the client is served in full
    assert outcome(proxy, "skipped_memory") == 1
    assert outcome(proxy, "compared") == 0
    assert proxy.sample("strangler_buffer_refusals_total", use="shadow") == 1
    assert held(proxy, "memory") == 0

