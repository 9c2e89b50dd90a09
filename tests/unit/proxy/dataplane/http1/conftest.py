"""proxy.dataplane.http1's server on 127.0.0.1 port 0, spoken to over raw sockets. Every async test here
runs on the default event loop and on uvloop (the proxy's). Waits are bounded by WAIT_S; no assertion is
about time."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvloop

from proxy.config.resilience import Limits
from proxy.dataplane.http1 import Http1Server, Request, Responder

WAIT_S = 5.0  # the bound on every wait in these tests; never a threshold that is asserted
LIMITS = Limits(
    max_body_bytes=1000, max_headers=20, max_header_bytes=2000, max_url_bytes=500, client_read_timeout_s=0.5,
    client_body_timeout_s=5.0, max_connections=8,
)  # fmt: skip
Handler = Callable[[Request, Responder], Awaitable[None]]


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> Mapping[str, Any]:
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


async def open_slow_reader(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A client whose receive buffer is small and fixed (Linux would grow it to tens of megabytes): what it
    does not read stays on the server's side."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return await asyncio.open_connection(sock=sock)


async def until(predicate: Callable[[], bool]) -> None:
    """Wait (bounded by WAIT_S) until the predicate holds."""
    async with asyncio.timeout(WAIT_S):
        while not predicate():
            await asyncio.sleep(0.001)


@dataclass
class Served:
    """A running server: change `limits` to change what the next request is held to."""

    limits: Limits
    server: Http1Server = field(init=False)
    port: int = 0
    events: list[str] = field(default_factory=list)
    seen: list[Request] = field(default_factory=list)  # every request a handler was called with

    async def exchange(self, data: bytes, *, then: bytes = b"", pause: float = 0.0) -> bytes:
        """Send raw bytes (then more after a pause); everything the server sent until it closed."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(data)
            if then:
                await asyncio.sleep(pause)
                writer.write(then)
            async with asyncio.timeout(WAIT_S):
                return await reader.read()
        finally:
            writer.close()


ServeFactory = Callable[..., Awaitable[Served]]


@pytest.fixture
async def serve() -> AsyncIterator[ServeFactory]:
    """serve(handler, **limits) -> Served; everything it started is shut down at the end."""
    started: list[tuple[Http1Server, asyncio.Server]] = []

    async def start(
        handler: Handler | None = None, *, max_connections: int | None = None, **limits: Any
    ) -> Served:
        chosen = handler or echo
        served = Served(LIMITS.model_copy(update=limits))

        async def recording(request: Request, responder: Responder) -> None:
            served.seen.append(request)
            await chosen(request, responder)

        served.server = Http1Server(
            recording, limits=lambda: served.limits, on_event=served.events.append,
            max_connections=lambda: max_connections or served.limits.max_connections,
        )  # fmt: skip
        loop = asyncio.get_running_loop()
        listener = await loop.create_server(served.server.protocol_factory, "127.0.0.1", 0)
        started.append((served.server, listener))
        served.port = listener.sockets[0].getsockname()[1]
        return served

    yield start
    for server, listener in started:
        listener.close()
        await server.shutdown(0.1)
        await listener.wait_closed()


async def echo(request: Request, responder: Responder) -> None:
    """What the server parsed, as JSON: the handler the tests use unless they need another."""
    body = await request.content.read()
    answer = {
        "method": request.method, "target": request.target, "path": request.path, "query": request.query,
        "version": request.version, "headers": [[k, v] for k, v in request.headers.items()],
        "body": body.decode("latin-1"), "keep_alive": request.keep_alive, "chunked": request.chunked,
        "content_length": request.content_length, "body_exists": request.body_exists,
        "upgrade": request.upgrade, "expect_continue": request.expect_continue, "peer": request.peer,
    }  # fmt: skip
    await responder.send(200, [("Content-Type", "application/json")], json.dumps(answer).encode())


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names (the last one of a name)
    body: bytes
    head: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error(self) -> str:
        return str(self.json()["error"]["code"])


def responses(raw: bytes) -> list[Response]:
    """Every response in `raw`, in order: by Content-Length, chunked, or to the end (close-delimited)."""
    out = []
    while raw:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        assert sep, f"an incomplete head: {raw[:200]!r}"
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines)}
        status = int(status_line.split(" ", 2)[1])
        if status < 200 or status in (204, 304):
            body, raw = b"", rest
        elif "content-length" in headers:
            length = int(headers["content-length"])
            body, raw = rest[:length], rest[length:]
        elif headers.get("transfer-encoding") == "chunked":
            body, raw = dechunk(rest)
        else:
            body, raw = rest, b""
        out.append(Response(status, headers, body, head))
    return out


def dechunk(data: bytes) -> tuple[bytes, bytes]:
    """(the body, what follows it); AssertionError when the chunked body is not complete."""
    body = b""
    while True:
        size_line, sep, data = data.partition(b"\r\n")
        assert sep, "a chunked body cut short"
        size = int(size_line, 16)
        if size == 0:
            assert data.startswith(b"\r\n"), "a chunked body cut short"
            return body, data[2:]
        assert len(data) >= size + 2, "a chunked body cut short"
        body, data = body + data[:size], data[size + 2 :]


def one(raw: bytes) -> Response:
    [response] = responses(raw)
    return response


def request(target: str = "/x", *extra: str, method: str = "GET", version: str = "1.1", close: bool = True,
            body: bytes = b"") -> bytes:  # fmt: skip
    lines = [f"{method} {target} HTTP/{version}", "Host: example.test", *extra]
    if close:
        lines.append("Connection: close")
    return "\r\n".join([*lines, "", ""]).encode() + body
