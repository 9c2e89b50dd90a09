"""An upstream's keep-alive pool, and the one call the data plane makes through it: Pool.request().

Owns the origin (parsed once), the TLS context (verification always on, SNI the URL's host), connecting
(TCP and TLS handshake bounded by connect_timeout_s) and the idle connections: reused last-in first-out,
at most max_idle, none kept past idle_timeout_s (one timer per pool, re-armed lazily), and any the
upstream closes while idle dropped at once (connection.py tells the pool). Owns the one retry: a pooled
connection found closed before a byte of the request went out is replaced by a new connection, once;
after a byte went out nothing is ever retried.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from contextlib import suppress

from httptools import HttpResponseParser

from proxy.upstream import errors
from proxy.upstream.connection import Connection
from proxy.upstream.response import Response
from proxy.upstream.send import Body, Stale, exchange
from proxy.upstream.state import DONE, IDLE
from proxy.upstream.wire import Headers, framing, parse_origin, render_head

__all__ = ["Pool"]


def _tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_bundle)  # CERT_REQUIRED, check_hostname: always
    context.set_alpn_protocols(["http/1.1"])
    return context


class Pool:
    """Keep-alive connections to one upstream, `http://host[:port]` or `https://host[:port]`.

    `ca_bundle`: a PEM file of the CAs an https upstream's certificate must chain to (None: the
    system's); the certificate and the host name are verified in any case. `max_idle`: connections kept
    waiting at most; `idle_timeout_s`: how long one may wait (keep it under the upstream's own
    keep-alive timeout). Created anywhere; used from one event loop.
    """

    __slots__ = ("_closed", "_idle", "_idle_timeout_s", "_max_idle", "_name", "_ssl", "_sweeper", "origin")

    def __init__(
        self, url: str, *, ca_bundle: str | None = None, max_idle: int = 64, idle_timeout_s: float = 30.0
    ) -> None:
        self.origin = origin = parse_origin(url)
        if ca_bundle is not None and not origin.tls:
            raise ValueError(f"ca_bundle is for https upstreams, not {url!r}")
        if max_idle < 0 or not idle_timeout_s > 0:
            raise ValueError("max_idle must be >= 0 and idle_timeout_s > 0")
        self._name = str(origin)
        self._ssl = _tls_context(ca_bundle) if origin.tls else None
        self._max_idle = max_idle
        self._idle_timeout_s = idle_timeout_s
        self._idle: deque[Connection] = deque()  # oldest first; reuse pops the newest
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def idle(self) -> int:
        """Connections waiting in the pool."""
        return len(self._idle)

    async def request(
        self, method: str, target: str, headers: Headers, body: Body = None, *,
        content_length: int | None = None, connect_timeout_s: float, read_timeout_s: float,
    ) -> Response:  # fmt: skip
        """Send one request and return the response head; the body is read from the Response.

        `target` goes on the request line as given (path and query, already encoded). `headers` are the
        caller's (name, value) pairs, or a header block it rendered ("Name: value\\r\\n" each); Host comes
        from the pool's URL, and hop-by-hop and framing headers are dropped (a rendered block carrying one
        is refused). `body`: None, bytes (sent with Content-Length), or an async iterable of bytes: sent
        chunked, or as-is when `content_length` gives its length (a stream that ends short or runs long
        raises BodyLengthError). Raises proxy.client.UpstreamError.
        """
        if self._closed:
            raise RuntimeError(f"the pool for {self._name} is closed")
        frame = framing(method, body, content_length)
        head = render_head(method, target, self.origin.authority, headers, frame)
        no_body = method == "HEAD"
        conn = self._pop()
        if conn is not None:
            try:
                return await exchange(
                    conn, head, body, content_length, no_body=no_body, read_timeout_s=read_timeout_s,
                    reused=True,
                )  # fmt: skip
            except Stale:
                pass  # closed while pooled, before a byte went out: one new connection, no more
        conn = await self._connect(connect_timeout_s)
        return await exchange(
            conn, head, body, content_length, no_body=no_body, read_timeout_s=read_timeout_s, reused=False
        )

    async def close(self) -> None:
        """Close the idle connections now (and wait until they are gone); in-flight exchanges keep theirs
        until released, and then close them. Idempotent."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        idle = list(self._idle)
        self._idle.clear()
        gone = [conn.wait_lost() for conn in idle]
        for conn in idle:
            conn.close(abort=True)
        if gone:
            await asyncio.gather(*gone)

    # -- what connections tell their pool ---------------------------------------------------------------

    def put(self, conn: Connection) -> None:
        """An exchange ended (Response.release): the connection waits for another when the whole message
        arrived, the request went out whole and both sides keep it alive; otherwise it is closed."""
        if conn.phase != DONE or not (conn.reusable and conn.keep_alive) or conn.lost:
            conn.close()
            return
        if self._closed or self._max_idle == 0:
            conn.close()
            return
        conn.phase = IDLE
        conn.response = None
        conn.buffer.clear()
        conn.buffered = 0
        conn.trailers.clear()
        if conn.read_paused:
            conn.read_paused = False
            conn.transport.resume_reading()  # an idle connection must see the upstream's EOF at once
        if conn.no_body:
            conn.parser = HttpResponseParser(conn)  # the old one still expects the body HEAD announced
        idle = self._idle
        if len(idle) >= self._max_idle:
            idle.popleft().close()  # keep the freshest: the oldest is the nearest to the upstream's timeout
        conn.idle_since = conn.time()
        idle.append(conn)
        if self._sweeper is None:
            self._sweeper = conn.loop.call_at(idle[0].idle_since + self._idle_timeout_s, self._sweep)

    def discard(self, conn: Connection) -> None:
        """An idle connection the upstream closed: gone from the pool before anyone can take it."""
        with suppress(ValueError):  # already taken out (evicted, swept, popped expired)
            self._idle.remove(conn)

    # -- inside ------------------------------------------------------------------------------------------

    def _pop(self) -> Connection | None:
        idle = self._idle
        if not idle:
            return None
        conn = idle.pop()
        if conn.time() - conn.idle_since < self._idle_timeout_s:
            return conn
        conn.close()  # the newest has expired, so have all the others
        while idle:
            idle.pop().close()
        return None

    def _sweep(self) -> None:
        self._sweeper = None
        idle = self._idle
        if not idle:
            return
        oldest = idle[0]
        now = oldest.time()
        while idle and now - idle[0].idle_since >= self._idle_timeout_s:
            idle.popleft().close()
        if idle:
            self._sweeper = oldest.loop.call_at(idle[0].idle_since + self._idle_timeout_s, self._sweep)

    async def _connect(self, timeout_s: float) -> Connection:
        loop = asyncio.get_running_loop()
        origin, name, context = self.origin, self._name, self._ssl
        try:
            async with asyncio.timeout(timeout_s):
                _, conn = await loop.create_connection(
                    lambda: Connection(self, name, loop), origin.host, origin.port, ssl=context,
                    server_hostname=origin.host if context is not None else None,
                )  # fmt: skip
        except TimeoutError:
            raise errors.connect_timed_out(name, timeout_s) from None
        except OSError as exc:  # refused, unreachable, DNS, and every TLS failure (ssl.SSLError)
            raise errors.connect_failed(name, exc) from exc
        return conn
