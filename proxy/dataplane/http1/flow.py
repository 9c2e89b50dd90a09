"""The transport side of one connection: flow control both ways, how it closes, an upgrade's socket.

Owns Flow, the second layer of Http1Connection (parsing.py, flow.py, deadlines.py, connection.py).
Reading pauses for any of three reasons: a body buffered over its high-water mark (until its reader
drains it), a request waiting its turn behind the one being answered, an upgrade head awaiting its
101. Writers wait for drain while the transport's buffer is over its high-water mark. A close either
flushes and closes, or lingers: reads and drops what the client still sends until it closes (bounded by
LINGER_S; no half-close, which makes asyncio clients drop their side), so that a client still sending
reads the answer instead of a reset. A cut (a response that
cannot complete) never looks like a complete response. After an upgrade head, what the client sends
next is kept for detach(), and nothing more is parsed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable

from proxy.config.resilience import Limits
from proxy.dataplane.http1.body import BodyStream, ClientGone
from proxy.dataplane.http1.parsing import Parsing

__all__ = ["BODY", "CLOSED", "CLOSING", "DETACHED", "LINGER", "LINGER_S", "OPEN", "QUEUED", "UPGRADE", "Flow"]

OPEN, LINGER, CLOSING, CLOSED, DETACHED = range(5)
BODY, QUEUED, UPGRADE = 1, 2, 4  # why reading is paused (any of them pauses it)
LINGER_S = 5.0  # reading and dropping after an answer: at most this long (and client_read_timeout_s)


class Flow(Parsing):
    __slots__ = ("_body_deadline", "_closing_soon", "_drain_waiter", "_idle_since", "_last_data", "_paused",
                 "_state", "_tail", "_timer", "_transport", "write_paused")  # fmt: skip

    def __init__(self, limits: Callable[[], Limits]) -> None:
        super().__init__(limits)
        self._state = OPEN
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._idle_since = self._last_data = self._body_deadline = 0.0
        self._paused = 0
        self.write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._closing_soon = False  # close after the response being written (shutdown, a failed body)
        self._tail: bytearray | None = None  # after an upgrade head: what the client sent next

    def _next(self) -> None:
        raise NotImplementedError

    def _waiting_for_head(self) -> bool:
        raise NotImplementedError

    def _waiting_to_start(self) -> bool:
        raise NotImplementedError

    # The timer's primitives (deadlines.py decides what it checks)

    def _tick(self) -> None:
        raise NotImplementedError

    def _arm_by(self, when: float) -> None:
        """Make sure the timer fires no later than `when` (usually it already does: nothing to do)."""
        timer = self._timer
        if timer is not None:
            if timer.when() <= when:
                return
            timer.cancel()
        self._timer = self.loop.call_at(when, self._tick)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # Reading

    def _pause(self, why: int) -> None:
        if not self._paused and self._transport is not None and self._state == OPEN:
            self._transport.pause_reading()
        self._paused |= why

    def _resume(self, why: int) -> None:
        if self._paused & why:
            self._paused &= ~why
            if not self._paused and self._transport is not None and self._state == OPEN:
                self._transport.resume_reading()
                self._last_data = self.loop.time()  # the gap restarts: the pause was the server's

    def body_full(self, stream: BodyStream) -> None:
        if stream is self._receiving:
            self._pause(BODY)

    def body_drained(self, stream: BodyStream) -> None:
        self._resume(BODY)

    # Writing

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake_writer(None)
        if self._state == OPEN and self._waiting_to_start():
            self._next()

    def _wake_writer(self, exc: Exception | None) -> None:
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            if exc is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(exc)

    async def drain(self) -> None:
        """Until the client has read enough of what was written."""
        if self._transport is None or self._state != OPEN:
            raise ClientGone()
        if self._drain_waiter is None:
            self._drain_waiter = self.loop.create_future()
        await self._drain_waiter

    def write(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or self._state != OPEN or transport.is_closing():
            raise ClientGone()
        transport.write(data)

    def write_chunk(self, chunk: bytes) -> None:
        transport = self._transport
        if transport is None or self._state != OPEN or transport.is_closing():
            raise ClientGone()
        transport.writelines((b"%x\r\n" % len(chunk), chunk, b"\r\n"))

    # Closing

    def _close(self, *, linger: bool, half_close: bool = False) -> None:
        """Close after what was written; with `linger`, first read and drop what the client still sends
        until it closes or the linger time is up (closing on unread bytes would reset the connection
        before the client reads the answer)."""
        transport = self._transport
        if self._state != OPEN or transport is None:
            return
        self._parser_done = True
        self._cancel_timer()
        now = self.loop.time()
        if linger:
            # An answer to a request whose body is still coming: no half-close, since an asyncio client
            # (aiohttp's among them) closes its own transport at our FIN and then fails to send the rest
            # of its body before it has read the answer; the answer says `Connection: close` and what the
            # client still sends is dropped until it closes. A refusal of a request we will not read
            # (`half_close`) sends our FIN at once, so even a client that never stops sending sees the end.
            self._state = LINGER
            if half_close and transport.can_write_eof():
                transport.write_eof()
            if self._paused:
                self._paused = 0
                transport.resume_reading()
            wait = min(LINGER_S, self._limits.client_read_timeout_s)
            self._timer = self.loop.call_at(now + wait, self._tick)
        else:
            self._state = CLOSING
            transport.close()
            if transport.get_write_buffer_size():  # a client that does not read gets read_timeout to do so
                self._timer = self.loop.call_at(now + self._limits.client_read_timeout_s, self._tick)

    def _cut(self, *, reset: bool) -> None:
        """A response that cannot be completed: the client must see a cut, never a complete-looking end.
        A body framed by its length or by chunks is visibly short at a plain close, once what was written
        is out; a body that ends at the close (HTTP/1.0) is cut by a reset, as is a client not reading."""
        transport = self._transport
        if self._state != OPEN or transport is None:
            return
        self._parser_done = True
        self._cancel_timer()
        if reset or transport.get_write_buffer_size():
            self._state = CLOSED
            if reset:
                _reset_on_close(transport)
            transport.abort()
        else:
            self._state = CLOSING
            transport.close()

    # Upgrades

    def _upgraded(self, tail: bytes) -> None:
        self._parser_done = True  # the rest is the new protocol's (or, unanswered by a 101, nobody's)
        self._tail = bytearray()
        self._upgrade_data(tail)

    def _upgrade_data(self, data: bytes) -> None:
        if self._manual_left:
            data = self._feed_manual(data)
            if self._receiving is not None:
                self._last_data = self.loop.time()
        assert self._tail is not None
        self._tail += data
        if not self._manual_left:
            self._pause(UPGRADE)  # the client waits for its 101 (or its refusal)

    def _detach(self) -> tuple[asyncio.Transport, bytes]:
        transport = self._transport
        if self._state != OPEN or transport is None:
            raise ClientGone()
        self._pause(UPGRADE)  # nothing more reaches this protocol: the caller resumes reading with its own
        self._state = DETACHED
        self._cancel_timer()
        tail, self._tail = bytes(self._tail or b""), None
        return transport, tail

    # The server's shutdown

    def shutdown(self) -> None:
        """Close when idle; otherwise after the response being written (`Connection: close` on it)."""
        self._closing_soon = True
        if self._state == OPEN and self._waiting_for_head():
            self._close(linger=False)

    def force(self) -> None:
        if self._transport is not None and self._state != CLOSED:
            self._transport.abort()


_NO_LINGER = struct.pack("ii", 1, 0)


def _reset_on_close(transport: asyncio.Transport) -> None:
    """SO_LINGER 0: the close that follows sends a reset, not an end of stream."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _NO_LINGER)
