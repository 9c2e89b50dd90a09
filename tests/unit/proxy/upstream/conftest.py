"""Real servers on 127.0.0.1 port 0 for the upstream client: aiohttp for normal behaviour, raw asyncio
servers that write exactly the bytes a test gives them, and a trustme CA. Every async test here runs on
the default event loop and on uvloop (the proxy's)."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
import uvloop
from aiohttp import web
from aiohttp.test_utils import TestServer

WAIT_S = 5.0  # the bound on every wait in these tests; never a threshold that is asserted
ServerFactory = Callable[..., Awaitable[TestServer]]


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> Mapping[str, Any]:
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


async def until(predicate: Callable[[], bool]) -> None:
    """Wait (bounded by WAIT_S) until the predicate holds."""
    async with asyncio.timeout(WAIT_S):
        while not predicate():
            await asyncio.sleep(0.001)


def free_port() -> int:
    """A port nothing listens on (bound, then released: a connect to it is refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Raw:
    """A raw upstream: one handler per accepted connection, which writes what the test wants."""

    port: int = 0
    peers: list[int] = field(default_factory=list)  # the client's port, per accepted connection
    heads: list[bytes] = field(default_factory=list)  # request heads the handlers recorded
    closed: int = 0  # connections whose client side reached EOF (or were reset)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


RawFactory = Callable[[Handler], Awaitable[Raw]]


@pytest.fixture
async def raw_server() -> AsyncIterator[RawFactory]:
    servers: list[asyncio.Server] = []
    handlers: list[asyncio.Task[None]] = []

    async def start(handler: Handler) -> Raw:
        raw = Raw()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            handlers.append(asyncio.current_task())  # type: ignore[arg-type]
            raw.peers.append(writer.get_extra_info("peername")[1])
            try:
                await handler(reader, writer)
                await reader.read()  # until the client closes its side
            # a handler still waiting at teardown ends quietly (3.11's streams log a cancelled one)
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
                pass
            finally:
                raw.closed += 1
                writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        servers.append(server)
        raw.port = server.sockets[0].getsockname()[1]
        return raw

    yield start
    for task in handlers:
        task.cancel()
    await asyncio.gather(*handlers)
    for server in servers:
        server.close()
        await server.wait_closed()


def peer_app() -> web.Application:
    """An aiohttp upstream that names the client's port (X-Peer) in every answer."""

    def peer(request: web.Request) -> dict[str, str]:
        return {"X-Peer": str(request.transport.get_extra_info("peername")[1]) if request.transport else ""}

    async def echo(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {**peer(request), "X-Method": request.method, "X-Length": str(len(body))}
        headers["X-Chunked"] = str(request.headers.get("Transfer-Encoding", "") == "chunked")
        return web.Response(body=body or b"empty", headers=headers)

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers=peer(request))
        response.enable_chunked_encoding()
        await response.prepare(request)
        for part in (b"one;", b"two;", b"three"):
            await response.write(part)
        await response.write_eof()
        return response

    async def status(request: web.Request) -> web.StreamResponse:
        return web.Response(status=int(request.match_info["code"]), headers=peer(request))

    async def close(request: web.Request) -> web.StreamResponse:
        response = web.Response(body=b"closing", headers=peer(request))
        response.force_close()  # Connection: close
        return response

    app = web.Application()
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/close", close)
    return app


@pytest.fixture
async def peer_url(aiohttp_server: ServerFactory) -> str:
    server = await aiohttp_server(peer_app())
    return f"http://127.0.0.1:{server.port}"


@dataclass(frozen=True)
class Tls:
    ca: trustme.CA
    ca_file: str

    def server_context(self, *names: str) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert(*names).configure_cert(context)
        return context


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    ca = trustme.CA()
    path = Path(tmp_path_factory.mktemp("ca")) / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return Tls(ca, str(path))
