"""Finding 7 of issue 12, on a real proxy process: `Expect: 100-continue` with a declared body over
`limits.max_body_bytes` is answered 413 before the body is invited, never `100 Continue` then 413."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.faults.proxy_process import WAIT_S, Served, serve_proxy
from tests.integration.proxy.conftest import Recorder, config_dict, upstream_app, url_of, write_config

LIMIT = 1024 * 1024


@pytest.fixture
async def proxy(
    tmp_path: Path, aiohttp_server: Callable[[web.Application], Awaitable[TestServer]]
) -> AsyncIterator[tuple[Served, Recorder]]:
    legacy = Recorder("legacy")
    doc = config_dict({"legacy": url_of(await aiohttp_server(upstream_app(legacy)))}, max_body_bytes=LIMIT)
    async with serve_proxy(write_config(tmp_path / "routes.yaml", doc)) as served:
        yield served, legacy


def head(length: int, expect: str = "100-continue") -> bytes:
    return (f"POST /api/upload HTTP/1.1\r\nHost: shop\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {length}\r\nExpect: {expect}\r\n\r\n").encode()  # fmt: skip


async def first_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_S)
    status_line, *lines = raw.decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines if line)
    return int(status_line.split(" ", 2)[1]), {name.lower(): value for name, value in fields.items()}


async def test_a_declared_body_over_the_limit_gets_413_before_any_byte_of_it_is_sent(
    proxy: tuple[Served, Recorder],
) -> None:
    served, legacy = proxy
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        writer.write(head(2_000_000))  # the head only: a client that waits for 100 Continue
        await writer.drain()
        status, fields = await first_answer(reader)
        assert status == 413  # not 100: the 2 MB are never invited
        assert fields["connection"] == "close"
        body = await asyncio.wait_for(reader.readexactly(int(fields["content-length"])), WAIT_S)
        assert json.loads(body)["error"]["code"] == "payload_too_large"
        assert await asyncio.wait_for(reader.read(), WAIT_S) == b""  # and the connection is closed
    finally:
        writer.close()
    assert legacy.seen == []
    assert await served.metric("strangler_requests_total", route="none", code="413") == 1


async def test_a_declared_body_within_the_limit_is_invited_and_forwarded(
    proxy: tuple[Served, Recorder],
) -> None:
    served, legacy = proxy
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        writer.write(head(LIMIT))
        await writer.drain()
        assert (await first_answer(reader))[0] == 100
        writer.write(b"y" * LIMIT)
        status, fields = await first_answer(reader)
        body: dict[str, Any] = json.loads(await reader.readexactly(int(fields["content-length"])))
    finally:
        writer.close()
    assert (status, body["served_by"], body["body_len"]) == (200, "legacy", LIMIT)
    assert len(legacy.seen) == 1


async def test_an_expectation_other_than_100_continue_is_a_json_417(proxy: tuple[Served, Recorder]) -> None:
    served, legacy = proxy
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        writer.write(head(10, expect="something-else"))
        await writer.drain()
        status, fields = await first_answer(reader)
        body = json.loads(await reader.readexactly(int(fields["content-length"])))
    finally:
        writer.close()
    assert (status, body["error"]["code"]) == (417, "expectation_failed")
    assert legacy.seen == []
