"""A client never speaks for the proxy: X-Strangler-Shadow (and every other internal header), in any
case and however often it is repeated, reaches no upstream on any path: live GET and POST, a fallback
replay, a WebSocket handshake, a shadow copy (which carries only the proxy's own signed marker)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from strangler_common.shadowmark import INTERNAL_HEADERS, SHADOW_HEADER, verify
from tests.contract.implementations import SHADOW_KEY
from tests.integration.proxy.conftest import WAIT_S, ProxyFactory, config_dict, images_route, url_of
from tests.integration.proxy.shadow_fakes import settle, shadow_route

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
FORGED = [("X-Strangler-Shadow", "1"), ("x-strangler-shadow", "true"), ("X-STRANGLER-SHADOW", "v1.1.ab")]


def recording_app(seen: list[dict[str, Any]], *, status: int = 200) -> web.Application:
    """Records the raw header names and values of every request, WebSocket handshakes included."""

    async def answer(request: web.Request) -> web.StreamResponse:
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers]
        seen.append({"method": request.method, "path": request.path, "headers": headers})
        if request.headers.get("Upgrade", "").lower() == "websocket":
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    await ws.send_str(f"echo:{message.data}")
            return ws
        await request.read()
        return web.json_response({"ok": True}, status=status)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


def internal(record: dict[str, Any]) -> list[tuple[str, str]]:
    names = {name.lower() for name in INTERNAL_HEADERS}
    return [(k, v) for k, v in record["headers"] if k.lower() in names]


@pytest.fixture
async def sides(aiohttp_server: ServerFactory) -> tuple[list[dict[str, Any]], str, list[dict[str, Any]], str]:
    legacy_seen: list[dict[str, Any]] = []
    new_seen: list[dict[str, Any]] = []
    legacy = await aiohttp_server(recording_app(legacy_seen))
    new = await aiohttp_server(recording_app(new_seen, status=503))
    return legacy_seen, url_of(legacy), new_seen, url_of(new)


async def test_a_forged_marker_never_reaches_the_upstream_on_get_or_post(
    make_proxy: ProxyFactory, sides: Any
) -> None:
    legacy_seen, legacy, _, new = sides
    proxy = await make_proxy(config_dict({"legacy": legacy, "new": new}, routes=[images_route(0)]))

    for method in ("GET", "POST"):
        response = await proxy.client.request(method, "/api/images", headers=FORGED, data=b"{}")
        assert response.status == 200

    assert [r["method"] for r in legacy_seen] == ["GET", "POST"]
    assert [internal(record) for record in legacy_seen] == [[], []]


async def test_a_forged_marker_sent_in_raw_bytes_is_stripped_whatever_its_case(
    make_proxy: ProxyFactory, sides: Any
) -> None:
    legacy_seen, legacy, _, new = sides
    proxy = await make_proxy(config_dict({"legacy": legacy, "new": new}, routes=[images_route(0)]))
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"POST /api/images HTTP/1.1\r\nHost: shop\r\nx-StRaNgLeR-sHaDoW: 1\r\n"
                 b"X-Strangler-Shadow: 1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")  # fmt: skip
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), WAIT_S)
    writer.close()

    assert answer.startswith(b"HTTP/1.1 200")
    assert len(legacy_seen) == 1
    assert internal(legacy_seen[0]) == []


async def test_a_fallback_replay_carries_no_forged_marker_to_either_side(
    make_proxy: ProxyFactory, sides: Any
) -> None:
    legacy_seen, legacy, new_seen, new = sides
    doc = config_dict({"legacy": legacy, "new": new},
                      routes=[images_route(100, fallback={"when": ["5xx"]})])  # fmt: skip
    proxy = await make_proxy(doc)

    response = await proxy.client.get("/api/images/x", headers=FORGED)

    assert response.status == 200  # the candidate's 503 was replayed to the primary
    assert proxy.sample("strangler_fallbacks_total", route="images", reason="5xx") == 1
    assert len(new_seen) == 1
    assert len(legacy_seen) == 1
    assert internal(new_seen[0]) == []
    assert internal(legacy_seen[0]) == []


async def test_a_websocket_handshake_carries_no_forged_marker(make_proxy: ProxyFactory, sides: Any) -> None:
    legacy_seen, legacy, _, new = sides
    proxy = await make_proxy(config_dict({"legacy": legacy, "new": new}, routes=[images_route(0)]))

    async with proxy.client.ws_connect("/chat", headers=FORGED) as ws:
        await ws.send_str("hi")
        assert (await ws.receive(timeout=WAIT_S)).data == "echo:hi"

    assert len(legacy_seen) == 1
    assert internal(legacy_seen[0]) == []


async def test_a_shadow_copy_carries_only_the_proxys_signed_marker(
    make_proxy: ProxyFactory, sides: Any
) -> None:
    legacy_seen, legacy, new_seen, new = sides
    proxy = await make_proxy(config_dict({"legacy": legacy, "new": new}, routes=[shadow_route()]))

    await proxy.client.post("/api/images", headers=[*FORGED, ("X-Request-ID", "copy-7")], data=b"{}")
    await settle(proxy)

    assert internal(legacy_seen[0]) == []
    [(name, marker)] = internal(new_seen[0])
    assert name == SHADOW_HEADER
    assert verify(SHADOW_KEY, marker, "copy-7", now=time.time()) == "signed"


async def test_without_a_key_the_copy_goes_unmarked_and_the_proxy_says_so(
    make_proxy: ProxyFactory, sides: Any
) -> None:
    from structlog.testing import capture_logs

    legacy_seen, legacy, new_seen, new = sides
    with capture_logs() as logs:
        proxy = await make_proxy(config_dict({"legacy": legacy, "new": new}, routes=[shadow_route()]),
                                 shadow_key=None)  # fmt: skip
        await proxy.client.post("/api/images", headers=FORGED, data=b"{}")
        await settle(proxy)

    assert internal(new_seen[0]) == []
    assert internal(legacy_seen[0]) == []
    warnings = [entry for entry in logs if entry["event"] == "shadow_copies_unsigned"]
    assert len(warnings) == 1
    assert warnings[0]["log_level"] == "warning"
    assert warnings[0]["routes"] == ["images"]
