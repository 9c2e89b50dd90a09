"""End to end through the real legacy stub: its /api/echo reports exactly what the proxy delivered."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from legacy_stub.app import create_app as create_legacy_app
from legacy_stub.diagnostics import EXPORT_BLOCK
from legacy_stub.settings import Settings
from tests.integration.proxy.conftest import Proxy, ProxyFactory, config_dict, json_body, raw_request, url_of


@pytest.fixture
async def proxy_to_stub(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]], make_proxy: ProxyFactory
) -> tuple[Proxy, TestServer]:
    stub = await aiohttp_server(create_legacy_app(Settings(image_delay_s=0)))
    return await make_proxy(config_dict({"legacy": url_of(stub)})), stub


async def test_the_stub_sees_the_request_exactly_as_the_client_sent_it(
    proxy_to_stub: tuple[Proxy, TestServer],
) -> None:
    proxy, stub = proxy_to_stub
    body = b'{"prompt": "a red fox", "n": 1}'
    request = (
        b"PUT /api/echo/a%20b/%C3%A9?x=1&x=2&y=%2F+z HTTP/1.1\r\n"
        b"Host: shop.example\r\nX-Multi: 1\r\nX-Multi: 2\r\nCookie: uid=42\r\n"
        b"Content-Type: application/json\r\nX-Request-ID: e2e-1\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close, X-Drop\r\nX-Drop: 1\r\n\r\n"
    ) + body
    head, raw = await raw_request(proxy.port, request)
    assert head.startswith(b"HTTP/1.1 200")
    echo = json_body(raw)
    assert echo["method"] == "PUT"
    assert echo["path"] == "/api/echo/a%20b/%C3%A9"
    assert echo["query"] == "x=1&x=2&y=%2F+z"
    assert echo["body_sha256"] == hashlib.sha256(body).hexdigest()
    headers = echo["headers"]
    assert headers["X-Multi"] == ["1", "2"]
    assert headers["Cookie"] == ["uid=42"]
    assert headers["Content-Type"] == ["application/json"]
    assert headers["X-Request-ID"] == ["e2e-1"]
    assert headers["X-Forwarded-For"] == ["127.0.0.1"]
    assert headers["X-Forwarded-Host"] == ["shop.example"]
    assert headers["Host"] == [f"127.0.0.1:{stub.port}"]
    assert "X-Drop" not in headers
    assert "Connection" not in headers or headers["Connection"] != ["close, X-Drop"]


async def test_a_multi_megabyte_export_streams_through_intact(
    proxy_to_stub: tuple[Proxy, TestServer],
) -> None:
    proxy, _ = proxy_to_stub
    response = await proxy.client.get("/api/export?mb=3")
    digest = hashlib.sha256()
    size = 0
    async for chunk in response.content.iter_chunked(256 * 1024):
        digest.update(chunk)
        size += len(chunk)
    assert response.status == 200
    assert size == 3 * len(EXPORT_BLOCK)
    assert digest.hexdigest() == hashlib.sha256(EXPORT_BLOCK * 3).hexdigest()
