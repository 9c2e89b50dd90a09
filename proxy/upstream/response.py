"""An upstream's answer as the caller sees it: the head as plain attributes, the body read whole or
streamed, and the one decision that ends the exchange (release or close).

Owns reading the body out of the connection's buffer (and resuming the socket once the buffer is drained
to LOW_WATER). Does not own the bytes' arrival (connection.py) or whether the connection is reused
(Pool.put decides when the response is released).
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

from proxy.upstream.errors import ResponseTooLarge
from proxy.upstream.state import BODY, DONE, LOW_WATER

if TYPE_CHECKING:
    from proxy.upstream.connection import Connection

__all__ = ["Response"]


def _ended(conn: Connection) -> Exception:
    """Why a body being read has no more bytes although its message did not end."""
    if conn.error is not None:
        return conn.error  # the upstream's failure (cut short, stalled, malformed)
    return RuntimeError("the response was closed while its body was being read")


class Response:
    """The head (status, reason, headers as raw latin-1 (name, value) pairs in wire order, version,
    content_length, chunked, keep_alive) and a body to read once: `read(limit)` or `chunks()`.

    `content_length` is the header's value: for a HEAD request or a 304 it describes the resource, and no
    body follows. `release()` ends the exchange and is always safe: the connection goes back to the pool
    only when the whole message arrived (read by the caller or not), the request went out whole and
    neither side said close; otherwise it is closed. `close()` closes it in any case. Both are
    idempotent; as an async context manager the response is released on a normal exit and closed on an
    exception or a cancellation. A body read that is cancelled closes the connection.
    """

    __slots__ = ("_conn", "chunked", "content_length", "headers", "keep_alive", "reason", "status", "version")

    def __init__(
        self, conn: Connection, status: int, reason: str, headers: list[tuple[str, str]], version: str,
        content_length: int | None, chunked: bool, keep_alive: bool,
    ) -> None:  # fmt: skip
        self._conn: Connection | None = conn
        self.status = status
        self.reason = reason
        self.headers = headers
        self.version = version
        self.content_length = content_length
        self.chunked = chunked
        self.keep_alive = keep_alive

    def __repr__(self) -> str:
        return f"<upstream Response {self.status} {self.reason!r} HTTP/{self.version}>"

    def _open(self) -> Connection:
        conn = self._conn
        if conn is None:
            raise RuntimeError("the response was released or closed: its body cannot be read")
        return conn

    async def read(self, limit: int) -> bytes:
        """The whole body; ResponseTooLarge (and the connection closed) when it is over `limit` bytes."""
        conn = self._open()
        length = self.content_length
        if length is not None and length > limit and conn.phase == BODY:
            self.close()
            raise ResponseTooLarge(limit)
        parts: list[bytes] = []
        size = 0
        buffer = conn.buffer
        while True:
            if buffer:
                parts.extend(buffer)
                size += conn.buffered
                buffer.clear()
                conn.buffered = 0
                if size > limit:
                    self.close()
                    raise ResponseTooLarge(limit)
                if conn.read_paused:
                    conn.resume()
            phase = conn.phase
            if phase == BODY:
                try:
                    await conn.wait()
                except BaseException:
                    self.close()
                    raise
            elif phase == DONE:
                return parts[0] if len(parts) == 1 else b"".join(parts)
            else:
                raise _ended(conn)

    def chunks(self) -> Response:
        """`async for chunk in response.chunks()`: the body as it arrives, each chunk as llhttp cut it."""
        return self

    def __aiter__(self) -> Response:
        return self

    async def __anext__(self) -> bytes:
        conn = self._open()
        buffer = conn.buffer
        while not buffer:
            phase = conn.phase
            if phase == BODY:
                try:
                    await conn.wait()
                except BaseException:
                    self.close()
                    raise
            elif phase == DONE:
                raise StopAsyncIteration
            else:
                raise _ended(conn)
        chunk = buffer.popleft()
        size = conn.buffered - len(chunk)
        conn.buffered = size
        if size <= LOW_WATER and conn.read_paused:
            conn.resume()
        return chunk

    def release(self) -> None:
        conn = self._conn
        if conn is not None:
            self._conn = None
            conn.owner.put(conn)

    def close(self) -> None:
        conn = self._conn
        if conn is not None:
            self._conn = None
            conn.close()

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.release()
        else:
            self.close()
