"""The public listener's server: its connections, the cap on them, and the graceful drain.

Owns Http1Server: the protocol factory handed to `loop.create_server`, the set of open connections
(a connection beyond `max_connections()` gets a 503 `too_many_connections` and is closed), the events
it reports (`on_event(code)`: every answer the server makes itself, by its JSON error code, and
`handler_failed`), and shutdown(): idle connections closed at once, busy ones after the response being
written (which says `Connection: close`), everything cut once the timeout has passed. Stopping the
listener (`asyncio.Server.close()`) is the caller's, before shutdown().
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from proxy.config.resilience import Limits
from proxy.dataplane.http1.connection import Http1Connection
from proxy.dataplane.http1.request import Request
from proxy.dataplane.http1.responder import Responder

__all__ = ["CANCEL_GRACE_S", "Handler", "Http1Server"]

Handler = Callable[[Request, Responder], Awaitable[None]]
CANCEL_GRACE_S = 1.0  # after the drain timeout, how long cancelled handlers get to unwind


class Http1Server:
    """One per listener. `limits` and `max_connections` are read live (each request, each connection)."""

    def __init__(
        self,
        handler: Handler,
        *,
        limits: Callable[[], Limits],
        max_connections: Callable[[], int],
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self.handler = handler
        self.limits = limits
        self._max_connections = max_connections
        self._on_event = on_event
        self._open: set[Http1Connection] = set()
        # Handlers of detached connections (a relay after a 101): nothing else holds their tasks once the
        # socket has another protocol, and a task nobody holds is collected while it is still running.
        self._detached: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._drained: asyncio.Future[None] | None = None

    def protocol_factory(self) -> Http1Connection:
        """For `loop.create_server(server.protocol_factory, ...)`."""
        return Http1Connection(self)

    @property
    def connections(self) -> int:
        """Open client connections (a detached one, handed over after a 101, is no longer counted)."""
        return len(self._open)

    def admit(self, connection: Http1Connection) -> bool | None:
        """True: counted; False: over the cap (the connection answers 503); None: shutting down."""
        if self._stopping:
            return None
        if len(self._open) >= self._max_connections():
            return False
        self._open.add(connection)
        return True

    def keep(self, task: asyncio.Task[None]) -> None:
        """Hold a detached connection's handler task until it ends."""
        self._detached.add(task)
        task.add_done_callback(self._detached.discard)

    def forget(self, connection: Http1Connection) -> None:
        self._open.discard(connection)
        drained = self._drained
        if drained is not None and not self._open and not drained.done():
            drained.set_result(None)

    def event(self, name: str) -> None:
        if self._on_event is not None:
            self._on_event(name)

    async def shutdown(self, timeout_s: float) -> None:
        """Drain: idle connections close now, busy ones after their response; after `timeout_s` the rest
        are cut and their handlers cancelled (each gets CANCEL_GRACE_S to unwind). New connections are
        closed on arrival from now on."""
        self._stopping = True
        for connection in list(self._open):
            connection.shutdown()
        if self._open:
            self._drained = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(timeout_s):
                    await self._drained
            except TimeoutError:
                pass
        tasks = [task for connection in self._open if (task := connection.task) is not None]
        for connection in list(self._open):
            connection.force()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=CANCEL_GRACE_S)
