"""One response, written by the handler: a whole one in one write, or a head and then a streamed body.

Owns Responder. The server decides the framing (head.py): Content-Length when the handler's headers or
send() give one, chunked for an HTTP/1.1 client otherwise, until-close for an HTTP/1.0 one; whether
the connection stays open (`Connection: close`/`keep-alive`); that a HEAD answer, a 204, a 304 or a 1xx
carries no body. write() waits while the transport's write buffer is over its high-water mark, so a
slow client slows the handler (and the upstream behind it), never grows memory. abort() cuts the
connection so a half-sent body never looks complete; detach() hands the socket over after a 101.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxy.dataplane.http1.head import CHUNKED, LENGTH, NONE, UNTIL_CLOSE, render_head
from proxy.dataplane.http1.request import Request

if TYPE_CHECKING:
    import asyncio

    from proxy.dataplane.http1.connection import Http1Connection

__all__ = ["Responder"]


class Responder:
    """The answer to one request. `started`: the head is on its way; `finished`: the response is over
    (ended, aborted or detached)."""

    __slots__ = ("_conn", "_framing", "_keep", "_left", "_request", "finished", "started", "status")

    def __init__(self, conn: Http1Connection, request: Request) -> None:
        self._conn = conn
        self._request = request
        self._framing = NONE
        self._left = 0
        self._keep = False
        self.started = False
        self.finished = False
        self.status = 0

    def _head(
        self, status: int, headers: list[tuple[str, str]], reason: str | None, length: int | None
    ) -> bytes:
        if self.started:
            raise RuntimeError("the response has already started")
        request = self._request
        if status < 200 and (status != 101 or not request.upgrade):
            raise ValueError("the server sends 100 Continue itself; 101 answers an upgrade request only")
        head, self._framing, self._left, self._keep = render_head(
            status, headers, reason, body_length=length, head_only=request.method == "HEAD",
            keep_alive=self._conn.may_keep_alive(request), http10=request.version == "1.0",
        )  # fmt: skip
        self.started = True
        self.status = status
        return head

    async def send(self, status: int, headers: list[tuple[str, str]], body: bytes = b"") -> None:
        """The whole response, head and body, in one write."""
        head = self._head(status, headers, None, len(body))
        self.finished = True
        self._conn.write(head + body if body and self._framing == LENGTH else head)
        self._conn.response_ended(self._request, keep=self._keep, complete=True)

    async def start(self, status: int, headers: list[tuple[str, str]], *, reason: str | None = None) -> None:
        """The head; the body follows with write() and end(). A 101 is followed by detach()."""
        head = self._head(status, headers, reason, None)
        conn = self._conn
        conn.write(head)
        if status == 101:
            self.finished = True  # the HTTP exchange is over: detach() hands the socket over
        elif conn.write_paused:
            await conn.drain()

    async def write(self, chunk: bytes) -> None:
        if not self.started or self.finished:
            raise RuntimeError("write() needs a started, unfinished response")
        framing = self._framing
        if not chunk or framing == NONE:
            return  # an empty chunk would end a chunked body; a HEAD, 204 or 304 answer has none
        conn = self._conn
        if framing == CHUNKED:
            conn.write_chunk(chunk)
        elif framing == LENGTH:
            if len(chunk) > self._left:
                raise ValueError("more body than the Content-Length the response declared")
            self._left -= len(chunk)
            conn.write(chunk)
        else:
            conn.write(chunk)
        if conn.write_paused:
            await conn.drain()

    async def end(self) -> None:
        """The response is complete. A body shorter than its Content-Length is not: the connection is cut."""
        if self.finished:
            return
        if not self.started:
            raise RuntimeError("end() before start()")
        framing = self._framing
        if framing == LENGTH and self._left:
            self.abort()
            return
        self.finished = True
        if framing == CHUNKED:
            self._conn.write(b"0\r\n\r\n")
        self._conn.response_ended(self._request, keep=self._keep and framing != UNTIL_CLOSE, complete=True)

    def abort(self) -> None:
        """Close the connection at once: what was sent of the body must not look complete."""
        if self.finished and self.status != 101:
            return
        self.finished = True
        reset = self._framing == UNTIL_CLOSE  # a plain close would make it look complete
        self._conn.response_ended(self._request, keep=False, complete=False, reset=reset)

    def detach(self) -> tuple[asyncio.Transport, bytes]:
        """After start(101, ...): the socket and the bytes the client sent after its request. The server
        has stopped reading it and forgets it; the caller calls `transport.set_protocol(its own)` then
        `transport.resume_reading()`, relays, and closes it."""
        if self.status != 101:
            raise RuntimeError("detach() follows start(101, ...)")
        return self._conn.detach()
