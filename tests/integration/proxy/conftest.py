"""Real servers on 127.0.0.1 port 0: fake upstreams that record what arrived, and the proxy in front."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from proxy.admin.app import create_admin_app
from proxy.app import create_app
from proxy.config import load_config
from tests.contract.implementations import SHADOW_KEY  # the services under test verify with it
from tests.integration.proxy.listener_server import ListenerTestServer

WAIT_S = 5.0  # the bound on every wait in these tests; never a threshold that is asserted


@dataclass
class Recorder:
    """What one fake upstream saw, and the knobs tests turn on it."""

    name: str
    seen: list[dict[str, Any]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)  # lets a held handler go on
    entered: asyncio.Event = field(default_factory=asyncio.Event)  # a held handler has started
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)  # a held handler was cancelled
    first_chunk_seen: asyncio.Event = field(default_factory=asyncio.Event)
    ws_close_codes: list[int | None] = field(default_factory=list)
    ws_closed: asyncio.Event = field(default_factory=asyncio.Event)


def upstream_app(recorder: Recorder) -> web.Application:
    """An upstream that answers with what it received, plus one route per transparency scenario."""

    async def echo(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        record = {
            "method": request.method,
            "raw_path": request.raw_path,
            "headers": [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers],
            "body_len": len(body),
        }
        recorder.seen.append(record)
        return web.json_response({"served_by": recorder.name, **record})

    async def hold(request: web.Request) -> web.StreamResponse:
        recorder.entered.set()
        try:
            await recorder.release.wait()
        except asyncio.CancelledError:
            recorder.cancelled.set()
            raise
        return web.json_response({"served_by": recorder.name})

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"first-chunk")
        await asyncio.wait_for(recorder.release.wait(), WAIT_S)  # until the client has seen it
        await response.write(b"second-chunk")
        await response.write_eof()
        return response

    async def idle_stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"first-chunk")
        try:
            await recorder.release.wait()
        except asyncio.CancelledError:
            recorder.cancelled.set()
            raise
        return response

    async def stalled_body(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = 100
        await response.prepare(request)
        await response.write(b"0123456789")  # 10 of the 100 bytes announced, then nothing
        await recorder.release.wait()
        return response

    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for i in range(int(request.query["n"])):
            await asyncio.sleep(float(request.query["gap"]))
            await response.write(f"{i};".encode())
        await response.write_eof()
        return response

    async def upload(request: web.Request) -> web.StreamResponse:
        first = await request.content.readexactly(len(b"first-part"))
        recorder.first_chunk_seen.set()
        rest = await request.content.read()
        return web.json_response({"first": first.decode(), "rest": rest.decode()})

    async def cookies(_: web.Request) -> web.StreamResponse:
        response = web.Response(text="ok")
        response.headers.add("Set-Cookie", "a=1; Path=/")
        response.headers.add("Set-Cookie", "b=2; Path=/; HttpOnly")
        return response

    async def gzipped(_: web.Request) -> web.StreamResponse:
        return web.Response(
            body=gzip.compress(b"hello " * 1000, mtime=0),
            headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"},
        )

    async def status(request: web.Request) -> web.StreamResponse:
        code = int(request.match_info["code"])
        headers = {"ETag": '"v1"'} if code == 304 else {}
        if code in (301, 302, 307):
            headers["Location"] = "/elsewhere"
        return web.Response(status=code, headers=headers)

    async def sized(_: web.Request) -> web.StreamResponse:
        return web.Response(body=b"x" * 1234, content_type="application/octet-stream")

    async def ws(request: web.Request) -> web.StreamResponse:
        socket_ = web.WebSocketResponse(protocols=("chat",))
        await socket_.prepare(request)
        async for msg in socket_:
            if msg.type is WSMsgType.TEXT and msg.data == "bye":
                await socket_.close(code=4001, message=b"see you")
            elif msg.type is WSMsgType.TEXT:
                await socket_.send_str(f"{recorder.name}:{msg.data}")
            elif msg.type is WSMsgType.BINARY:
                await socket_.send_bytes(msg.data[::-1])
        recorder.ws_close_codes.append(socket_.close_code)
        recorder.ws_closed.set()
        return socket_

    app = web.Application()
    app.router.add_route("*", "/hold", hold)
    app.router.add_route("*", "/api/images/hold", hold)
    app.router.add_get("/stream", stream)
    app.router.add_get("/idle-stream", idle_stream)
    app.router.add_get("/trickle", trickle)
    app.router.add_get("/stalled-body", stalled_body)
    app.router.add_post("/upload", upload)
    app.router.add_get("/cookies", cookies)
    app.router.add_get("/gzip", gzipped)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/sized", sized)
    app.router.add_get("/ws", ws)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


def url_of(server: TestServer) -> str:
    return f"http://127.0.0.1:{server.port}"


def closed_port() -> int:
    """A port nobody listens on (bound then released; connect is refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config_dict(
    upstreams: dict[str, str],
    *,
    routes: list[dict[str, Any]] | None = None,
    default: str | None = None,
    trusted: list[str] | None = None,
    timeout_s: float = 5.0,
    connect_timeout_s: float = 2.0,
    max_body_bytes: int | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "version": 1,
        "upstreams": {
            name: {"url": url, "connect_timeout_s": connect_timeout_s, "timeout_s": timeout_s}
            for name, url in upstreams.items()
        },
        "default_upstream": default or next(iter(upstreams)),
        "trusted_proxies": trusted or [],
        "routes": routes or [],
    }
    if max_body_bytes is not None:
        doc["limits"] = {"max_body_bytes": max_body_bytes}
    return doc


def images_route(percent: float, **extra: Any) -> dict[str, Any]:
    return {
        "name": "images",
        "match": {"path_prefix": "/api/images"},
        "primary": "legacy",
        "candidate": "new",
        "rollout": {"percent": percent, **extra.pop("rollout", {})},
        **extra,
    }


def write_config(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class Proxy:
    client: TestClient[web.Request, web.Application]
    app: web.Application
    registry: CollectorRegistry
    config_path: Path
    admin: TestClient[web.Request, web.Application]

    def sample(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    @property
    def port(self) -> int:
        assert self.client.server.port is not None
        return self.client.server.port


ProxyFactory = Callable[..., Awaitable[Proxy]]


@pytest.fixture
async def upstreams(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
) -> AsyncIterator[dict[str, tuple[TestServer, Recorder]]]:
    """Two fake upstreams, `legacy` and `new`."""
    out = {}
    for name in ("legacy", "new"):
        recorder = Recorder(name)
        out[name] = (await aiohttp_server(upstream_app(recorder)), recorder)
    yield out
    for _, recorder in out.values():
        recorder.release.set()  # nothing stays held past the test


@pytest.fixture
def make_proxy(
    tmp_path: Path,
    aiohttp_client: Callable[..., Awaitable[TestClient[web.Request, web.Application]]],
) -> ProxyFactory:
    async def make(
        doc: dict[str, Any],
        *,
        admin_token: str | None = "s3cret",  # noqa: S107 - a test token
        watch_interval_s: float | None = None,
        config_path: Path | None = None,
        shadow_key: bytes | None = SHADOW_KEY,
        **client_kwargs: Any,
    ) -> Proxy:
        path = config_path or write_config(tmp_path / "routes.yaml", doc)
        registry = CollectorRegistry()
        app = create_app(
            load_config(path), registry=registry, admin_token=admin_token, watch_interval_s=watch_interval_s,
            shadow_key=shadow_key,
        )
        client = await aiohttp_client(ListenerTestServer(app), **client_kwargs)
        admin = await aiohttp_client(create_admin_app(app))
        return Proxy(client=client, app=app, registry=registry, config_path=path, admin=admin)

    return make


def headers_named(record: dict[str, Any], name: str) -> list[str]:
    return [v for k, v in record["headers"] if k.lower() == name.lower()]


async def raw_request(port: int, request: bytes) -> tuple[bytes, bytes]:
    """Send bytes exactly as given; return (head, body) of the answer (Connection: close expected)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(-1), WAIT_S)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body


def json_body(body: bytes) -> Any:
    return json.loads(body)
