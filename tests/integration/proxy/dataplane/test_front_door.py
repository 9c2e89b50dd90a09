"""The public listener against hostile input, over raw sockets: every limit answers its status in JSON,
nothing malformed is forwarded, and only configured upstreams are ever contacted."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from proxy.app import create_app
from proxy.config import load_config
from proxy.dataplane.listener import PublicListener
from tests.integration.proxy.conftest import WAIT_S, Recorder, config_dict, upstream_app, url_of, write_config

LIMITS = {
    "max_body_bytes": 1000,
    "max_headers": 20,
    "max_header_bytes": 2000,
    "max_url_bytes": 500,
    "client_read_timeout_s": 0.5,
    "max_connections": 8,
}


@dataclass
class Front:
    port: int
    legacy: Recorder
    trap: Recorder  # a server that is NOT in routes.yaml: nothing may ever reach it
    trap_port: int


@pytest.fixture
async def front(
    tmp_path: Path, aiohttp_server: Callable[[web.Application], Awaitable[TestServer]]
) -> AsyncIterator[Front]:
    async with serving(tmp_path, aiohttp_server, LIMITS) as started:
        yield started


@pytest.fixture
async def patient_front(
    tmp_path: Path, aiohttp_server: Callable[[web.Application], Awaitable[TestServer]]
) -> AsyncIterator[Front]:
    """Patient between body chunks (2 s), not with a whole body (1 s)."""
    limits = {**LIMITS, "client_read_timeout_s": 2.0, "client_body_timeout_s": 1.0}
    async with serving(tmp_path, aiohttp_server, limits) as started:
        yield started


@asynccontextmanager
async def serving(
    tmp_path: Path, aiohttp_server: Callable[[web.Application], Awaitable[TestServer]], limits: dict[str, Any]
) -> AsyncIterator[Front]:
    legacy, trap = Recorder("legacy"), Recorder("trap")
    legacy_server = await aiohttp_server(upstream_app(legacy))
    trap_server = await aiohttp_server(upstream_app(trap))
    doc = config_dict({"legacy": url_of(legacy_server)})
    doc["limits"] = limits
    app = create_app(load_config(write_config(tmp_path / "routes.yaml", doc)), registry=CollectorRegistry(),
                     watch_interval_s=None, access_log=False)  # fmt: skip
    listener = PublicListener(app)
    await listener.start("127.0.0.1", 0)
    assert trap_server.port is not None
    try:
        yield Front(listener.port, legacy, trap, trap_server.port)
    finally:
        legacy.release.set()
        await listener.stop(5.0)


async def exchange(
    port: int, data: bytes, *, then: bytes = b"", pause: float = 0
) -> tuple[int, dict[str, Any]]:
    """Send raw bytes (then more after a pause); return the status and JSON body of the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        if then:
            await asyncio.sleep(pause)
            writer.write(then)
        raw = await asyncio.wait_for(reader.read(-1), WAIT_S)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"Traceback" not in raw
    return status, json.loads(body) if body.startswith(b"{") else {}


def get(target: str = "/x", *extra: str) -> bytes:
    lines = [f"GET {target} HTTP/1.1", "Host: example.test", *extra, "Connection: close", "", ""]
    return "\r\n".join(lines).encode()


async def test_a_request_target_over_max_url_bytes_is_a_json_414(front: Front) -> None:
    status, body = await exchange(front.port, get("/" + "a" * 600))
    assert status == 414
    assert body["error"]["code"] == "uri_too_long"
    assert front.legacy.seen == []


async def test_a_query_that_makes_the_target_too_long_is_a_414_from_the_live_limit(front: Front) -> None:
    status, body = await exchange(front.port, get("/x?" + "q" * 499))  # under the parser bound, over 500
    assert status == 414
    assert body["error"]["code"] == "uri_too_long"
    assert front.legacy.seen == []


async def test_too_many_headers_or_too_many_header_bytes_is_a_json_431(front: Front) -> None:
    many = [f"X-H{i}: v" for i in range(25)]
    status, body = await exchange(front.port, get("/x", *many))
    assert (status, body["error"]["code"]) == (431, "too_many_headers")
    status, body = await exchange(front.port, get("/x", "X-Big: " + "b" * 2100))
    assert (status, body["error"]["code"]) == (431, "header_too_large")
    spread = [f"X-S{i}: {'s' * 300}" for i in range(8)]  # every line fits, together they do not
    status, body = await exchange(front.port, get("/x", *spread))
    assert (status, body["error"]["code"]) == (431, "header_too_large")
    assert front.legacy.seen == []


async def test_a_body_over_max_body_bytes_is_a_json_413(front: Front) -> None:
    data = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\nConnection: close\r\n\r\n" + b"x" * 1001
    status, body = await exchange(front.port, data)
    assert (status, body["error"]["code"]) == (413, "payload_too_large")


async def test_a_client_that_stalls_in_the_head_gets_a_json_408(front: Front) -> None:
    status, body = await exchange(front.port, b"GET /x HTTP/1.1\r\nHost: a\r\n")  # never finished
    assert (status, body["error"]["code"]) == (408, "request_timeout")
    assert front.legacy.seen == []


async def test_a_client_that_stalls_in_the_body_gets_a_json_408(
    front: Front, caplog: pytest.LogCaptureFixture
) -> None:
    head = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\nConnection: close\r\n\r\n"
    status, body = await exchange(front.port, head + b"only-part")
    assert (status, body["error"]["code"]) == (408, "request_timeout")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []  # no lingering read


async def test_a_body_trickled_in_under_the_gap_timeout_still_gets_408_at_the_whole_body_deadline(
    patient_front: Front, caplog: pytest.LogCaptureFixture
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", patient_front.port)
    try:
        writer.write(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 40\r\nConnection: close\r\n\r\n")
        answer = asyncio.ensure_future(reader.read(-1))
        sent = 0
        while not answer.done() and sent < 40:  # 1 byte every 0.1 s: 4 s for the body, never a 2 s gap
            writer.write(b"x")
            sent += 1
            await asyncio.wait([answer], timeout=0.1)
        raw = await asyncio.wait_for(answer, WAIT_S)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert int(head.split(b" ", 2)[1]) == 408
    assert json.loads(body)["error"]["code"] == "request_timeout"
    assert sent < 40  # refused while the body was still arriving
    assert patient_front.legacy.seen == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_connections_beyond_max_connections_get_a_json_503_and_are_closed(front: Front) -> None:
    held = [await asyncio.open_connection("127.0.0.1", front.port) for _ in range(8)]
    try:
        status, body = await exchange(front.port, get())
        assert (status, body["error"]["code"]) == (503, "too_many_connections")
    finally:
        for _, writer in held:
            writer.close()


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        b"Content-Length: 5\r\nContent-Length: 6\r\n",
        b"Transfer-Encoding: xchunked\r\n",
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
        b"Content-Length: +5\r\n",
        b"Content-Length: 5, 5\r\n",
    ],
)
async def test_ambiguous_message_framing_is_refused_and_never_forwarded(front: Front, framing: bytes) -> None:
    smuggled = b"0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n"
    data = b"POST /x HTTP/1.1\r\nHost: a\r\n" + framing + b"Connection: close\r\n\r\n" + smuggled
    status, body = await exchange(front.port, data)
    assert status == 400
    assert body["error"]["code"] in ("conflicting_framing", "bad_request")
    assert front.legacy.seen == []


async def test_absolute_form_targets_host_headers_and_connect_never_reach_an_unconfigured_host(
    front: Front,
) -> None:
    trap = f"127.0.0.1:{front.trap_port}"
    attempts = [
        get(f"http://{trap}/x"),
        f"CONNECT {trap} HTTP/1.1\r\nHost: {trap}\r\nConnection: close\r\n\r\n".encode(),
        b"CONNECT /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        get("/x", f"X-Forwarded-Host: {trap}", "X-Forwarded-Proto: https", "X-Forwarded-For: 10.9.9.9"),
        get("/x").replace(b"Host: example.test", f"Host: {trap}".encode()),
    ]
    statuses = [(await exchange(front.port, data))[0] for data in attempts]
    assert statuses == [400, 405, 405, 200, 200]  # absolute form: invalid_path; CONNECT: no tunnels
    assert front.trap.seen == []
    forwarded = [record for record in front.legacy.seen if record["raw_path"] == "/x"]
    assert len(forwarded) == 2  # the two origin-form GETs reached the configured upstream, and only they
    spoofed = {k.lower(): v for k, v in forwarded[0]["headers"]}
    assert spoofed["x-forwarded-host"] == "example.test"  # an untrusted peer's X-Forwarded-* is not believed
    assert spoofed["x-forwarded-proto"] == "http"
    assert spoofed["x-forwarded-for"] == "10.9.9.9, 127.0.0.1"  # appended to, never trusted for client_ip
    for record in forwarded:
        headers = {k.lower(): v for k, v in record["headers"]}
        assert headers["host"] != trap  # the upstream's own host, whatever the client sent


async def test_tls_or_garbage_on_the_plain_port_is_a_json_400_without_a_stack_trace(front: Front) -> None:
    tls_hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40
    for data in (tls_hello, b"\x00\xff\r\n\r\n", b"GET\r\n\r\n"):
        status, body = await exchange(front.port, data)
        assert status == 400
        assert "error" in body


async def test_a_request_line_claiming_another_http_version_gets_a_505_in_http_1_1(front: Front) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
    writer.write(b"GET /x HTTP/2.0\r\nHost: a\r\n\r\n")
    raw = await asyncio.wait_for(reader.read(-1), WAIT_S)
    writer.close()
    assert raw.startswith(b"HTTP/1.1 505 ")
    assert b'"http_version_not_supported"' in raw
    assert front.legacy.seen == []
