"""A request body as the handler reads it: chunks as they arrive, with flow control towards the client.

Owns BodyStream, read the way proxy/dataplane/bodies.py and forwarding.py read aiohttp's StreamReader
(`iter_any()`, `read()`, `readany()`, `at_eof()`/`is_eof()`, `exception()`/`set_exception()`), plus
`read_chunk()` (b"" at the end). Above HIGH_WATER unread bytes the connection stops reading the socket
(the client's TCP window fills and it waits); once the reader is back under LOW_WATER, reading resumes:
a client that uploads faster than the upstream takes the body never grows the proxy's memory. A body
whose request said `Expect: 100-continue` asks its connection to send `100 Continue` the first time it is
read, never before. Errors the connection meets (BodyTooLarge, BodyReadTimeout, BodyMalformed, the client
gone) are raised to the reader in place of the rest. EMPTY stands for every request without a body.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol

__all__ = ["EMPTY", "HIGH_WATER", "LOW_WATER", "BodyMalformed", "BodyOwner", "BodyStream", "ClientGone"]

HIGH_WATER = 256 * 1024  # unread body bytes above which the socket stops being read
LOW_WATER = 64 * 1024  # ... and under which reading resumes


class ClientGone(ConnectionResetError):
    """The client's connection is closed: what the handler reads or writes on it raises this (a
    ConnectionError, so code that handles any lost connection handles it too)."""

    def __init__(self) -> None:
        super().__init__("the client went away")


class BodyMalformed(Exception):
    """The request body broke its own framing after its handler started (a bad chunk): a 400, and the
    connection closes. (One that breaks within the head's own read never reaches a handler.)"""


class BodyOwner(Protocol):
    """What a body stream asks of its connection."""

    loop: asyncio.AbstractEventLoop

    def body_full(self, stream: BodyStream) -> None: ...
    def body_drained(self, stream: BodyStream) -> None: ...
    def continue_wanted(self, stream: BodyStream) -> None: ...


class BodyStream:
    __slots__ = ("_chunks", "_eof", "_exc", "_owner", "_paused", "_waiter", "buffered", "expecting",
                 "limit", "received")  # fmt: skip

    def __init__(self, owner: BodyOwner | None, *, expecting: bool = False, limit: int | None = None) -> None:
        self._owner = owner
        self._chunks: deque[bytes] = deque()
        self._eof = False
        self._exc: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self.buffered = 0  # bytes received and not yet read
        self.received = 0  # bytes received in all
        self.expecting = expecting  # `100 Continue` is owed at the first read
        self.limit = limit  # counted against as chunks arrive (a chunked body); None: nothing to count

    # The connection's side

    def feed(self, chunk: bytes) -> bool:
        """Queue a chunk; False when it takes the body over its limit (nothing is queued then)."""
        self.received += len(chunk)
        if self.limit is not None and self.received > self.limit:
            return False
        self._chunks.append(chunk)
        self.buffered += len(chunk)
        if self._waiter is not None:
            self._wake()
        if self.buffered > HIGH_WATER and not self._paused and self._owner is not None:
            self._paused = True
            self._owner.body_full(self)
        return True

    def feed_eof(self) -> None:
        self._eof = True
        if self._waiter is not None:
            self._wake()

    def set_exception(self, exc: BaseException) -> None:
        self._exc = exc
        if self._waiter is not None:
            self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # The handler's side

    async def read_chunk(self) -> bytes:
        """The next chunk as it arrived; b"" once the body is complete."""
        while True:
            if self._exc is not None:
                raise self._exc
            if self._chunks:
                chunk = self._chunks.popleft()
                self.buffered -= len(chunk)
                if self._paused and self.buffered <= LOW_WATER:
                    self._paused = False
                    assert self._owner is not None
                    self._owner.body_drained(self)
                return chunk
            if self._eof or self._owner is None:
                return b""
            if self._waiter is not None:
                raise RuntimeError("the body is already being read by another task")
            if self.expecting:
                self.expecting = False
                self._owner.continue_wanted(self)
            waiter = self._waiter = self._owner.loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None

    readany = read_chunk

    async def read(self, n: int = -1) -> bytes:
        """Everything to the end (n < 0), or up to n bytes."""
        if n == 0:
            return b""
        if n > 0:
            chunk = await self.read_chunk()
            if len(chunk) > n:
                self._chunks.appendleft(chunk[n:])
                self.buffered += len(chunk) - n
                chunk = chunk[:n]
            return chunk
        parts = []
        while chunk := await self.read_chunk():
            parts.append(chunk)
        return b"".join(parts)

    def iter_any(self) -> BodyStream:
        return self

    def __aiter__(self) -> BodyStream:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self.read_chunk()
        if not chunk:
            raise StopAsyncIteration
        return chunk

    def is_eof(self) -> bool:
        """The whole body has arrived (some of it may still be unread)."""
        return self._eof or self._owner is None

    def at_eof(self) -> bool:
        """The whole body has arrived and been read."""
        return self.is_eof() and not self._chunks

    def exception(self) -> BaseException | None:
        return self._exc


class _Empty(BodyStream):
    """The body of every request without one: always at its end; nothing can be fed or failed."""

    __slots__ = ()

    def feed(self, chunk: bytes) -> bool:
        raise RuntimeError("a request without a body was fed one")

    def set_exception(self, exc: BaseException) -> None:
        pass  # shared by every request: nothing to fail


EMPTY: BodyStream = _Empty(None)
