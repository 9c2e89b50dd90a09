"""Real fake upstreams for the shadow tests: a primary and a candidate whose answers tests can bend,
plus raw TCP servers that reset the connection or answer garbage."""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
import struct
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from PIL import Image

from proxy.dataplane.keys import SHADOW
from tests.integration.proxy.conftest import WAIT_S, Proxy

GENERATION: dict[str, Any] = {
    "id": "gen_1",
    "created": 1700000000,
    "prompt": "a red fox",
    "size": "512x512",
    "images": [{"name": "gen_1-0.png", "url": "/api/images/files/gen_1-0.png", "content_type": "image/png",
                "width": 512, "height": 512, "bytes": 100, "sha256": "a" * 64}],
}


@dataclass
class Service:
    """What one fake service saw, and how it answers."""

    name: str
    seen: list[dict[str, Any]] = field(default_factory=list)
    hold: bool = False  # when set, every request waits for `release`
    release: asyncio.Event = field(default_factory=asyncio.Event)
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    status: int = 200
    content_type: str = "application/json"
    patch: dict[str, Any] = field(default_factory=dict)  # top-level fields replaced in the JSON answer
    image_size: tuple[int, int] = (8, 8)
    image_colour: str = "red"
    text: bytes = b"plain text answer"


def png(width: int, height: int, colour: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG")
    return out.getvalue()


def service_app(service: Service) -> web.Application:
    async def record(request: web.Request) -> None:
        body = await request.read()
        service.seen.append({"method": request.method, "path_qs": request.path_qs,
                             "headers": dict(request.headers), "body": body})
        if service.hold:
            service.entered.set()
            await service.release.wait()

    async def generation(request: web.Request) -> web.StreamResponse:
        await record(request)
        doc = {**GENERATION, **service.patch}
        return web.json_response(doc, status=service.status, content_type=service.content_type)

    async def nonce(request: web.Request) -> web.StreamResponse:
        await record(request)
        return web.json_response({"stable": "same", "nonce": uuid.uuid4().hex}, status=service.status)

    async def image(request: web.Request) -> web.StreamResponse:
        await record(request)
        return web.Response(body=png(*service.image_size, service.image_colour), content_type="image/png")

    async def text(request: web.Request) -> web.StreamResponse:
        await record(request)
        return web.Response(body=service.text, content_type="text/plain")

    async def sized(request: web.Request) -> web.StreamResponse:
        await record(request)
        return web.Response(body=b"x" * int(request.query["n"]), content_type="application/octet-stream")

    async def stream(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse()
        response.content_length = None
        await response.prepare(request)
        await response.write(b"x" * 100_000)  # more than SMALL_BODY: streamed, not read whole
        service.entered.set()
        await service.release.wait()
        await response.write(b"end")
        return response

    app = web.Application()
    app.router.add_route("*", "/api/stream", stream)
    app.router.add_route("*", "/api/nonce", nonce)
    app.router.add_route("*", "/api/image", image)
    app.router.add_route("*", "/api/text", text)
    app.router.add_route("*", "/api/sized", sized)
    app.router.add_route("*", "/api/{tail:.*}", generation)
    return app


@contextlib.asynccontextmanager
async def raw_server(behaviour: str) -> AsyncIterator[int]:
    """A TCP server that reads the request, then `reset`s the connection (RST) or answers `garbage`."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_S)
        if behaviour == "garbage":
            writer.write(b"\x00\x01 this is not HTTP at all \xff\xfe\r\n\r\n")
            with contextlib.suppress(Exception):
                await writer.drain()
        else:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


def shadow_route(shadow: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """Everything under /api is served by `legacy` (rollout 0 %) and mirrored to `new`."""
    return {
        "name": "images",
        "match": {"path_prefix": "/api"},
        "primary": "legacy",
        "candidate": "new",
        "rollout": {"percent": 0},
        "shadow": {"percent": 100, "methods": ["GET", "HEAD", "POST"], "max_per_minute": 100_000,
                   **(shadow or {})},
        **extra,
    }


async def settle(proxy: Proxy) -> None:
    """Wait (bounded) until every shadow task of the proxy has finished."""
    shadower = proxy.app[SHADOW]
    for _ in range(20):
        tasks = list(shadower.tasks)
        if not tasks:
            return
        await asyncio.wait(tasks, timeout=WAIT_S)
    raise AssertionError("shadow tasks did not settle")


def outcome(proxy: Proxy, name: str, route: str = "images") -> float:
    return proxy.sample("strangler_shadow_requests_total", route=route, outcome=name)


def outcomes(proxy: Proxy, route: str = "images") -> dict[str, float]:
    names = ("compared", "sampled_out", "skipped_method", "skipped_body", "dropped_full", "error", "timeout")
    return {name: outcome(proxy, name, route) for name in names if outcome(proxy, name, route)}
