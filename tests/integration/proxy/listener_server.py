"""aiohttp's test-server interface over the proxy's own public listener (proxy/dataplane/listener.py), so
pytest-aiohttp's TestClient drives the real front door: the http1 server, its limits and refusals, and
the app's lifecycle around it."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.test_utils import BaseTestServer
from aiohttp.web_runner import BaseRunner
from yarl import URL

from proxy.dataplane.listener import PublicListener

__all__ = ["ListenerTestServer"]


class ListenerTestServer(BaseTestServer):
    """`aiohttp_client(ListenerTestServer(app))`: the app served by PublicListener on 127.0.0.1."""

    def __init__(self, app: web.Application, *, shutdown_timeout_s: float = 5.0, **kwargs: Any) -> None:
        super().__init__(scheme="http", host="127.0.0.1", **kwargs)
        self.app = app
        self.listener: PublicListener | None = None
        self._shutdown_timeout_s = shutdown_timeout_s

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:  # pragma: no cover - start_server replaced
        raise NotImplementedError("ListenerTestServer serves through PublicListener")

    async def start_server(self, loop: asyncio.AbstractEventLoop | None = None, **kwargs: Any) -> None:
        if self.listener is not None:
            return
        self.listener = PublicListener(self.app)
        await self.listener.start(self.host, self.port or 0)
        self.port = self.listener.port
        self._root = URL(f"http://{self.host}:{self.port}")

    @property
    def started(self) -> bool:
        return self.listener is not None

    async def close(self) -> None:
        if self.listener is not None and not self.closed:
            await self.listener.stop(self._shutdown_timeout_s)
            self._root = None
            self._closed = True
