"""One exchange on one connection: write the request (head, then the body if any) and await the head of
the answer.

Owns the body forms (none, bytes, a stream of known length, a chunked stream), write flow control (a
paused transport is drained before the next chunk) and the line between "nothing went out" (Stale: the
pool may try another connection) and "bytes went out" (never retried). Does not own the parsing or the
timer (connection.py) or choosing the connection (pool.py).

An answer that arrives before the whole body went out (a 413, a 401) ends the upload at the next chunk
boundary: the answer is returned and the connection, its request cut short, is never reused. Errors
raised by the body stream itself (the caller's own limits) pass through unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterable

from proxy.upstream import errors, timer
from proxy.upstream.connection import Connection
from proxy.upstream.errors import BodyLengthError
from proxy.upstream.response import Response
from proxy.upstream.state import HEAD

__all__ = ["Body", "Stale", "exchange"]

Body = bytes | AsyncIterable[bytes] | None


class Stale(Exception):
    """A pooled connection was found closed before a byte of the request went out."""


async def exchange(
    conn: Connection, head: bytes, body: Body, content_length: int | None, *, no_body: bool,
    read_timeout_s: float, reused: bool,
) -> Response:  # fmt: skip
    """Send the request and return the response head; the connection is closed on any failure."""
    _begin(conn, no_body, read_timeout_s)
    transport = conn.transport
    try:
        if conn.lost or transport.is_closing():  # closed while pooled, its loss not yet delivered
            raise RuntimeError("the transport is closing")
        if body is None:
            transport.write(head)
        elif isinstance(body, bytes):
            transport.writelines((head, body))
        else:
            conn.sending = True
            transport.write(head)
    except (RuntimeError, OSError) as exc:  # refused by the transport: nothing went out
        conn.close()
        if reused:
            raise Stale from exc
        raise errors.reset(conn.origin, None) from exc
    try:
        if body is not None and not isinstance(body, bytes):
            await _send_stream(conn, body, content_length)
        while conn.response is None:
            if conn.error is not None:
                raise conn.error
            await conn.wait()
        return conn.response
    except BaseException:
        conn.close()
        raise


def _begin(conn: Connection, no_body: bool, read_timeout_s: float) -> None:
    """A new exchange on the connection: the request is about to go out, and the read timer starts."""
    conn.phase = HEAD
    conn.no_body = no_body
    conn.read_timeout = read_timeout_s
    conn.headers = []
    conn.reason = b""
    conn.response = None
    conn.error = None
    conn.until_eof = False
    conn.reusable = True
    conn.unsent = -1
    timer.arm(conn, conn.time())


async def _send_stream(conn: Connection, body: AsyncIterable[bytes], length: int | None) -> None:
    """The body as it comes from the caller's stream, chunked unless its length was given."""
    transport = conn.transport
    sent = 0
    try:
        async for chunk in body:
            if conn.phase != HEAD or transport.is_closing():
                break  # answered, or failed, before the body went out
            if not chunk:
                continue  # an empty chunk would end a chunked body
            sent += len(chunk)
            if length is None:
                transport.writelines((b"%x\r\n" % len(chunk), chunk, b"\r\n"))
            elif sent > length:
                raise BodyLengthError(f"the request body ran past its declared length of {length} bytes")
            else:
                transport.write(chunk)
            while conn.write_paused and conn.phase == HEAD:  # timer.py fails an upstream that stops reading
                await conn.wait()
        else:
            if conn.phase == HEAD and not transport.is_closing():
                if length is None:
                    transport.write(b"0\r\n\r\n")
                elif sent != length:
                    raise BodyLengthError(f"the request body ended {length - sent} bytes short of its length")
                return
        conn.reusable = False  # the request was cut short: this connection cannot carry another
    finally:
        conn.sending = False
        conn.last = conn.time()  # the wait for the head starts when the body has gone out
