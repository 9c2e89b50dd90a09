"""The public listener: the http1 server (http1/) serving the app's handler on a socket, with the app's
lifecycle around it.

Owns PublicListener: start() runs the app's startup and cleanup contexts (upstream pools, the shadow
mirror, the file watcher: aiohttp's AppRunner, with no site of its own) and listens; stop() stops
accepting, drains (idle connections at once, busy ones after their response, all of them after the
timeout) and then runs the app's cleanup. What the server answers itself (limits, refusals) is counted
here: a connection refused at the cap (`strangler_connections_refused_total`, said at WARNING at most
every REFUSAL_LOG_EVERY_S with a count), an `Expect` refused before the body (as a request of route
"none"), and every other refusal logged at INFO without the input.
"""

from __future__ import annotations

import asyncio
import math
import socket
from collections.abc import Callable

import structlog
from aiohttp import web

from proxy.dataplane.http1 import Http1Server
from proxy.dataplane.keys import HANDLER, METRICS, STORE
from proxy.metrics import ProxyMetrics

__all__ = ["REFUSAL_LOG_EVERY_S", "PublicListener"]

_log = structlog.get_logger("proxy.dataplane.listener")
REFUSAL_LOG_EVERY_S = 10.0
_EXPECT_REFUSALS = {"payload_too_large": 413, "expectation_failed": 417}


class PublicListener:
    def __init__(self, app: web.Application, *, max_connections: Callable[[], int] | None = None) -> None:
        self.app = app
        store = app[STORE]
        self._metrics: ProxyMetrics = app[METRICS]
        cap = max_connections or (lambda: store.current.table.limits.max_connections)
        self._cap = cap
        self.server = Http1Server(
            app[HANDLER].handle, limits=lambda: store.current.table.limits, max_connections=cap,
            on_event=self._event,
        )  # fmt: skip
        self._runner = web.AppRunner(app, handle_signals=False)
        self._listener: asyncio.Server | None = None
        self._refused = 0
        self._said: tuple[float, int] = (-math.inf, 0)

    async def start(
        self, host: str, port: int, *, reuse_port: bool = False, sock: socket.socket | None = None
    ) -> None:
        await self._runner.setup()  # the app's startup and cleanup contexts
        loop = asyncio.get_running_loop()
        if sock is not None:
            self._listener = await loop.create_server(self.server.protocol_factory, sock=sock, backlog=1024)
        else:
            self._listener = await loop.create_server(
                self.server.protocol_factory, host, port, reuse_port=reuse_port or None, backlog=1024
            )

    @property
    def addresses(self) -> list[str]:
        if self._listener is None:
            return []
        out = []
        for sock in self._listener.sockets:
            host, port = sock.getsockname()[:2]
            out.append(f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}")
        return out

    @property
    def port(self) -> int:
        assert self._listener is not None, "not listening"
        return int(self._listener.sockets[0].getsockname()[1])

    async def stop(self, timeout_s: float) -> None:
        if self._listener is not None:
            self._listener.close()
        await self.server.shutdown(timeout_s)
        if self._listener is not None:
            await self._listener.wait_closed()
            self._listener = None
        await self._runner.cleanup()

    def _event(self, code: str) -> None:
        if code == "too_many_connections":
            self._refused_at_cap()
        elif code in _EXPECT_REFUSALS:
            self._metrics.observe_request("none", "none", "none", "OTHER", _EXPECT_REFUSALS[code], 0.0)
        else:
            _log.info("request_refused", code=code)

    def _refused_at_cap(self) -> None:
        """One connection refused at the cap: counted, and said at WARNING at most every REFUSAL_LOG_EVERY_S
        (a flood of refusals must not become a flood of log lines)."""
        self._refused += 1
        self._metrics.connections_refused.inc()
        now = asyncio.get_running_loop().time()
        said_at, said_count = self._said
        if now - said_at >= REFUSAL_LOG_EVERY_S:
            _log.warning("connections_refused", max_connections=self._cap(), open=self.server.connections,
                         refused=self._refused - said_count)  # fmt: skip
            self._said = (now, self._refused)
