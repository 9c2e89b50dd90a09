"""A handler served by the real http1 server on 127.0.0.1, and a client session pointed at it: the
stand-in front for tests that drive one step of the request path (forward, the Caller) over sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp

from proxy.config import Limits
from proxy.dataplane.http1 import Handler, Http1Server

__all__ = ["served"]


@asynccontextmanager
async def served(handle: Handler) -> AsyncIterator[aiohttp.ClientSession]:
    """`handle(request, responder)` behind the http1 server (default limits); yields a session whose
    relative URLs reach it. Everything is closed on exit."""
    server = Http1Server(handle, limits=Limits, max_connections=lambda: 100)
    listener = await asyncio.get_running_loop().create_server(server.protocol_factory, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as session:
            yield session
    finally:
        listener.close()
        await server.shutdown(1.0)
