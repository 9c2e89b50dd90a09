"""One keep-alive connection to an upstream: the asyncio Protocol under every exchange it carries.

Owns the wire events (bytes, EOF, loss), the llhttp parser and what its callbacks build (the response
head, the body buffer), read flow control (pause above HIGH_WATER, resume at LOW_WATER), write flow
control (the sender's drain), and the connection's phase (state.py). Does not own what is sent
(send.py), the read timer's policy (timer.py), the caller's view of the answer (response.py) or the
pool (pool.py).

One parser per connection: llhttp starts the next message by itself after a complete one. A response to
HEAD is the exception, as llhttp cannot be told the request was HEAD: such a head ends the exchange
(DONE at headers-complete, whatever Content-Length or Transfer-Encoding announce), and the connection
goes back to the pool with a fresh parser (the old one still expects the announced body). Bytes the
upstream sends when none are owed (a body after a HEAD answer, a second message, anything while idle)
make the connection unusable: it is closed, never reused.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol

from httptools import HttpParserError, HttpParserUpgrade, HttpResponseParser

from proxy.client import UpstreamError
from proxy.upstream import errors
from proxy.upstream.response import Response
from proxy.upstream.state import BODY, CLOSED, DONE, FAILED, HEAD, HIGH_WATER, IDLE
from proxy.upstream.wire import response_framing

__all__ = ["Connection", "Owner"]


class Owner(Protocol):
    """The pool, as its connections see it."""

    def put(self, conn: Connection) -> None: ...
    def discard(self, conn: Connection) -> None: ...


class Connection(asyncio.Protocol):
    __slots__ = (
        "buffer", "buffered", "error", "headers", "idle_since", "keep_alive", "last", "loop", "lost",
        "lost_waiter", "no_body", "origin", "owner", "parser", "pauses", "peak", "phase", "read_paused",
        "read_timeout", "reason", "response", "reusable", "sending", "time", "timer", "trailers",
        "transport", "unsent", "until_eof", "waiter", "write_paused",
    )  # fmt: skip

    def __init__(self, owner: Owner, origin: str, loop: asyncio.AbstractEventLoop) -> None:
        self.owner = owner
        self.origin = origin  # for error details
        self.loop = loop
        self.time = loop.time
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set by connection_made
        self.parser = HttpResponseParser(self)
        self.phase = IDLE
        self.lost = False
        self.lost_waiter: asyncio.Future[None] | None = None
        self.waiter: asyncio.Future[None] | None = None  # the exchange's one wait: head, body or drain
        self.timer: asyncio.TimerHandle | None = None
        self.buffer: deque[bytes] = deque()
        self.buffered = 0
        self.peak = 0  # the most body bytes ever buffered (flow control's bookkeeping, read by tests)
        self.pauses = 0  # how often reading was paused for a slow reader
        self.read_paused = self.write_paused = self.sending = False
        self.headers: list[tuple[str, str]] = []
        self.trailers: list[tuple[str, str]] = []  # where header callbacks land after the head: dropped
        self.reason = b""
        self.response: Response | None = None
        self.error: UpstreamError | None = None
        self.no_body = self.keep_alive = self.until_eof = False
        self.reusable = True
        self.read_timeout = 0.0
        self.unsent = -1  # the request bytes the timer last saw waiting to go out (timer.py); -1: not looked
        self.last = self.idle_since = 0.0

    # -- one exchange ------------------------------------------------------------------------------------

    def wait(self) -> asyncio.Future[None]:
        waiter = self.waiter = self.loop.create_future()
        return waiter

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def resume(self) -> None:
        """The reader drained the buffer to LOW_WATER: read again, and the upstream owes bytes again."""
        self.read_paused = False
        self.last = self.time()
        self.transport.resume_reading()

    def fail(self, error: UpstreamError) -> None:
        self.error = error
        self.phase = FAILED
        self.reusable = False
        self.stop_timer()
        self.transport.abort()
        self.wake()

    def close(self, *, abort: bool = False) -> None:
        """Let the connection go: gently after a complete message, at once (abort) otherwise or if asked."""
        if self.phase == CLOSED:
            return
        complete = (self.phase == DONE or self.phase == IDLE) and not abort
        self.phase = CLOSED
        self.reusable = False
        self.stop_timer()
        self.buffer.clear()
        self.buffered = 0
        if complete:
            self.transport.close()
        else:
            self.transport.abort()
        self.wake()

    def wait_lost(self) -> asyncio.Future[None]:
        waiter = self.lost_waiter = self.loop.create_future()
        if self.lost:
            waiter.set_result(None)
        return waiter

    def stop_timer(self) -> None:
        timer = self.timer
        if timer is not None:
            self.timer = None
            timer.cancel()

    # -- asyncio.Protocol --------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport: create_connection

    def data_received(self, data: bytes) -> None:
        phase = self.phase
        if phase != HEAD and phase != BODY:  # nothing owed: the upstream speaks out of turn
            self.reusable = False
            self.transport.close()
            return
        self.last = self.time()
        try:
            self.parser.feed_data(data)
        except HttpParserUpgrade:
            pass  # after a 101, which on_headers_complete has failed already
        except HttpParserError as exc:
            if self.phase == HEAD or self.phase == BODY:
                self.fail(errors.malformed(self.origin, exc))
            else:  # junk after our message: that message stands, the connection does not
                self.reusable = False
                self.transport.close()

    def eof_received(self) -> None:
        return None  # the transport closes itself; connection_lost decides what the EOF meant

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        phase = self.phase
        if phase == IDLE:
            self.phase = CLOSED
            self.owner.discard(self)
        elif phase == HEAD:
            self.fail(errors.reset(self.origin, exc))
        elif phase == BODY:
            if self.until_eof and exc is None:  # a body without length ends with the connection
                self.phase = DONE
                self.reusable = False
                self.stop_timer()
            else:
                self.fail(errors.cut_short(self.origin, exc))
        self.wake()
        if self.lost_waiter is not None and not self.lost_waiter.done():
            self.lost_waiter.set_result(None)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self.wake()

    # -- llhttp's callbacks ------------------------------------------------------------------------------

    def on_status(self, status: bytes) -> None:
        self.reason += status  # llhttp may hand the reason phrase over in pieces

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        if self.phase != HEAD:  # a second message: this client never pipelines
            self.reusable = False
            return
        parser = self.parser
        status = parser.get_status_code()
        if status < 200:
            if status == 101:
                self.fail(errors.upgrade(self.origin))
            else:  # interim (100 Continue, 103 Early Hints): skipped, the final answer follows
                self.headers.clear()
                self.reason = b""
            return
        headers = self.headers
        length, chunked = response_framing(headers)
        keep_alive = self.keep_alive = parser.should_keep_alive()
        no_body = self.no_body
        self.until_eof = length is None and not chunked and not no_body and status != 204 and status != 304
        self.response = Response(
            self, status, self.reason.decode("latin-1"), headers, parser.get_http_version(), length,
            chunked, keep_alive,
        )  # fmt: skip
        self.headers = self.trailers
        if no_body:  # HEAD: the head is the whole answer, whatever it announces
            self.phase = DONE
            self.stop_timer()
        else:
            self.phase = BODY
        self.wake()

    def on_body(self, body: bytes) -> None:
        if self.phase != BODY:  # a body after a HEAD answer, or of a second message
            self.reusable = False
            return
        self.buffer.append(body)
        size = self.buffered + len(body)
        self.buffered = size
        if size > self.peak:
            self.peak = size
        if size > HIGH_WATER and not self.read_paused:
            self.read_paused = True
            self.pauses += 1
            self.transport.pause_reading()
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def on_message_complete(self) -> None:
        if self.phase == BODY:
            self.phase = DONE
            self.stop_timer()
            self.wake()
