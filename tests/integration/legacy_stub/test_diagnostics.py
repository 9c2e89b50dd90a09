"""/api/echo tells exactly what arrived; /api/export streams exactly N MiB, chunked."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from legacy_stub.app import create_app
from legacy_stub.diagnostics import EXPORT_BLOCK, MIB
from legacy_stub.settings import Settings
from tests.integration.legacy_stub.raw_http import exchange_json

Client = TestClient[Any, Any]


@pytest.fixture
async def client(aiohttp_client: Any) -> Client:
    result: Client = await aiohttp_client(create_app(Settings(image_delay_s=0.0, max_echo_bytes=4096)))
    return result


@pytest.fixture
async def port(aiohttp_server: Any) -> int:
    """The port of a real stub on 127.0.0.1, for requests no HTTP client would send as they are."""
    server: TestServer = await aiohttp_server(create_app(Settings(image_delay_s=0.0)))
    assert server.port is not None
    return server.port


async def test_echo_keeps_repeated_headers_their_original_names_and_order(port: int) -> None:
    request = (
        b"GET /api/echo HTTP/1.1\r\nHost: stub\r\n"
        b"X-Dup: one\r\nX-Mixed-Case: Value With Spaces\r\nX-Dup: two\r\nx-dup: three\r\n"
        b"Cookie: a=1\r\nCookie: b=2\r\nConnection: close\r\n\r\n"
    )

    status, echoed = await exchange_json("127.0.0.1", port, request)

    assert status == 200
    headers = echoed["headers"]
    assert headers["X-Dup"] == ["one", "two"]
    assert headers["x-dup"] == ["three"]
    assert headers["X-Mixed-Case"] == ["Value With Spaces"]
    assert headers["Cookie"] == ["a=1", "b=2"]
    assert list(headers) == ["Host", "X-Dup", "X-Mixed-Case", "x-dup", "Cookie", "Connection"]


async def test_echo_returns_the_raw_path_and_query_bytes_undecoded(port: int) -> None:
    target = b"/api/echo/a%2Fb/c?b=2&a=%2F%20x&a=1&empty=&flag&plus=a+b&pct=%7e"
    request = b"DELETE " + target + b" HTTP/1.1\r\nHost: stub\r\nConnection: close\r\n\r\n"

    status, echoed = await exchange_json("127.0.0.1", port, request)

    assert status == 200
    assert echoed["method"] == "DELETE"
    assert echoed["path"] == "/api/echo/a%2Fb/c"
    assert echoed["query"] == "b=2&a=%2F%20x&a=1&empty=&flag&plus=a+b&pct=%7e"


async def test_echo_returns_a_binary_body_exactly(client: Client) -> None:
    body = bytes(range(256)) * 4

    response = await client.put(
        "/api/echo", data=body, headers={"Content-Type": "application/octet-stream"}
    )

    assert response.status == 200
    echoed = await response.json()
    assert echoed["method"] == "PUT"
    assert echoed["body_bytes"] == len(body)
    assert base64.b64decode(echoed["body_base64"]) == body
    assert echoed["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert "\ufffd" in echoed["body"]  # the text view replaces what is not UTF-8


async def test_echo_returns_a_text_body_as_text(client: Client) -> None:
    response = await client.post("/api/echo", data="grüße ✓".encode(), headers={"Content-Type": "text/plain"})

    echoed = await response.json()
    assert echoed["body"] == "grüße ✓"
    assert echoed["body_bytes"] == len("grüße ✓".encode())


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND"])
async def test_echo_answers_any_method(client: Client, method: str) -> None:
    response = await client.request(method, "/api/echo")

    assert response.status == 200
    assert (await response.json())["method"] == method


async def test_echo_refuses_a_body_beyond_its_bound_with_413(client: Client) -> None:
    response = await client.post("/api/echo", data=b"x" * 4097)

    assert response.status == 413
    assert (await response.json())["error"]["code"] == "payload_too_large"


async def test_echo_refuses_an_oversized_chunked_body_with_413(client: Client) -> None:
    async def chunks() -> Any:
        for _ in range(8):
            yield b"y" * 1024

    response = await client.post("/api/echo", data=chunks())

    assert response.status == 413


async def test_export_streams_exactly_n_mib_with_chunked_encoding(client: Client) -> None:
    response = await client.get("/api/export", params={"mb": "3"})

    assert response.status == 200
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in response.headers
    assert response.headers["X-Export-Bytes"] == str(3 * MIB)
    digest, received = hashlib.sha256(), 0
    async for chunk in response.content.iter_chunked(256 * 1024):
        digest.update(chunk)
        received += len(chunk)
    assert received == 3 * MIB
    assert digest.hexdigest() == hashlib.sha256(EXPORT_BLOCK * 3).hexdigest()


async def test_export_defaults_to_one_mib(client: Client) -> None:
    response = await client.get("/api/export")

    assert len(await response.read()) == MIB


@pytest.mark.parametrize("mb", ["0", "2049", "-1", "abc", "1.5", ""])
async def test_export_refuses_a_size_out_of_bounds_with_400_naming_mb(client: Client, mb: str) -> None:
    response = await client.get("/api/export", params={"mb": mb})

    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "invalid_request"
    assert "mb" in error["message"]
