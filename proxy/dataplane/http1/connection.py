"""One client connection: requests in order, one handler at a time, and what the server answers itself.

Owns Http1Connection, the asyncio.Protocol (its layers below: parsing.py for llhttp's callbacks and the
limits, flow.py for flow control and closing, deadlines.py for the timer). A request whose head is
complete starts its handler task once the read that brought it is parsed (llhttp may still refuse the
head), or waits in order behind the one being answered (pipelining: never two handlers, never two
responses interleaved; reading pauses while one waits). The next request starts once the previous
handler has returned. A client that goes away cancels the handler of a response not yet finished (and
with it the upstream exchange). Refusals are answered in order, after the answers before them, and
close the connection. Owns no framing (responder.py, head.py).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, cast

import structlog
from httptools import HttpParserError, HttpParserUpgrade

from proxy.dataplane.http1.body import HIGH_WATER, BodyMalformed, BodyStream, ClientGone
from proxy.dataplane.http1.deadlines import Deadlines
from proxy.dataplane.http1.flow import BODY, CLOSED, DETACHED, OPEN, QUEUED
from proxy.dataplane.http1.head import CONTINUE
from proxy.dataplane.http1.refusals import INTERNAL, TOO_MANY_CONNECTIONS, Refused, from_parser
from proxy.dataplane.http1.request import Request
from proxy.dataplane.http1.responder import Responder

if TYPE_CHECKING:
    from proxy.dataplane.http1.server import Http1Server

__all__ = ["Http1Connection"]

_log = structlog.get_logger("proxy.dataplane.http1")


class Http1Connection(Deadlines):
    __slots__ = ("_current", "_queue", "_ready", "_responder", "_task", "server")

    def __init__(self, server: Http1Server) -> None:
        self.server = server
        super().__init__(server.limits)
        self._queue: deque[Request | Refused] = deque()
        self._current: Request | None = None  # the request being answered
        self._ready: Request | None = None  # to start once the read that completed its head is parsed
        self._responder: Responder | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self._peer = (peer[0], peer[1])
        admitted = self.server.admit(self)
        if admitted is None:  # shutting down
            self._close(linger=False)
        elif not admitted:
            self._answer(TOO_MANY_CONNECTIONS)
        else:
            self._idle(self.loop.time())

    def data_received(self, data: bytes) -> None:
        if self._parser_done:
            if self._tail is not None:
                self._upgrade_data(data)
            return  # lingering, or past the last request: read and dropped
        self._quiet += len(data)
        try:
            self._parser.feed_data(data)
        except HttpParserUpgrade as upgrade:
            self._upgraded(data[upgrade.args[0] :])
        except HttpParserError as exc:
            if not self._parser_done:  # else a callback stopped it (a failed body), or a last request ended
                self._parse_failed(self._refusal or from_parser(exc))
        else:
            if self._quiet > self._line_cap:
                self._line_too_long()
            if self._receiving is not None:
                self._last_data = self.loop.time()
        ready = self._ready
        if ready is not None:  # started once all of this read is parsed: llhttp may still refuse its head
            self._ready = None
            self._start(ready)

    def connection_lost(self, exc: Exception | None) -> None:
        state, self._state = self._state, CLOSED
        self._parser_done = True
        self._cancel_timer()
        if state != DETACHED:
            self.server.forget(self)
        gone = ClientGone()
        if self._receiving is not None:
            self._receiving.set_exception(gone)
            self._receiving = None
        for item in self._queue:
            if isinstance(item, Request):
                item.content.set_exception(gone)
        self._queue.clear()
        responder = self._responder
        if self._task is not None and responder is not None and not responder.finished:
            self._task.cancel()
        self._wake_writer(gone)
        del self._parser  # it holds this protocol's callbacks: no cycle left for the collector

    # Requests, in order

    def _free(self) -> bool:
        return self._current is None and self._ready is None and not self._queue

    def _waiting_for_head(self) -> bool:
        return self._current is None and not self._queue

    def _waiting_to_start(self) -> bool:
        return self._current is None and bool(self._queue)

    def _dispatch(self, request: Request) -> None:
        if self._free() and not self.write_paused and self._state == OPEN:
            self._ready = request
        else:
            self._queue.append(request)
            self._pause(QUEUED)

    def _start(self, request: Request) -> None:
        self._current = request
        responder = self._responder = Responder(self, request)
        self._task = self.loop.create_task(self._run(request, responder))

    async def _run(self, request: Request, responder: Responder) -> None:
        try:
            await self.server.handler(request, responder)
            if not responder.finished:  # returned without ending: ended as it stands
                if responder.started:
                    await responder.end()
                else:
                    self._failed(responder)
        except asyncio.CancelledError:
            raise
        except Exception:
            if self._state == OPEN:  # otherwise the client went away: nothing is wrong, nobody to answer
                _log.exception("handler_failed", method=request.method, path=request.path)
                self._failed(responder)
        finally:
            self._handler_done()

    def _failed(self, responder: Responder) -> None:
        self.server.event("handler_failed")
        if responder.started:
            responder.abort()
        elif self._state == OPEN:
            responder.started = responder.finished = True
            self._answer(INTERNAL)

    def _handler_done(self) -> None:
        self._task = self._current = self._responder = None
        if self._state == OPEN:
            self._next()

    def _next(self) -> None:
        """The connection is free: the next request in line, a refusal in line, or wait for a head."""
        if self._closing_soon or self._tail is not None:
            self._close(linger=False)
            return
        if self.write_paused:
            return  # resume_writing() comes back here: no new answer while the client reads none
        if self._paused:
            receiving = self._receiving
            if receiving is None or receiving.buffered <= HIGH_WATER:
                self._resume(BODY)  # the last handler's unread body is dropped with it
        if self._queue:
            item = self._queue.popleft()
            if isinstance(item, Refused):
                self._answer(item)
                return
            if not self._queue:
                self._resume(QUEUED)
            self._start(item)
            return
        if self._paused:
            self._resume(QUEUED)
        self._idle(self.loop.time())

    def _parse_failed(self, refused: Refused) -> None:
        """What llhttp refused; the request it was reading, if any, goes with it."""
        broken, self._incomplete = self._incomplete, None
        if broken is not None and broken is self._current:  # its handler is reading a body that broke
            self._fail_body(broken.content, BodyMalformed())
            return
        if broken is self._ready:
            self._ready = None  # never started: refused in its place
        elif broken is not None and self._queue and self._queue[-1] is broken:
            self._queue.pop()
        self._refuse_in_order(refused)

    def _refuse_in_order(self, refused: Refused) -> None:
        self._parser_done = True
        if self._free():
            self._answer(refused)
        else:
            self._queue.append(refused)
            self._pause(QUEUED)

    def _answer(self, refused: Refused) -> None:
        self.server.event(refused.code)
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(refused.answer())
        self._close(linger=True, half_close=True)

    # What the responder and the body stream ask

    def may_keep_alive(self, request: Request) -> bool:
        content = request.content
        return (
            request.keep_alive and self._state == OPEN and not self._closing_soon and self._tail is None
            and content.is_eof()  # a body still arriving (or never invited) is dropped, then the conn. closes
        )  # fmt: skip

    def response_ended(self, request: Request, *, keep: bool, complete: bool, reset: bool = False) -> None:
        if self._state != OPEN:
            return
        if not complete:
            self._cut(reset=reset)
        elif not keep or self._closing_soon or not request.content.is_eof():
            self._close(linger=not request.content.is_eof())
        # else: the next request starts when the handler returns

    def continue_wanted(self, stream: BodyStream) -> None:
        """The handler reads a body whose client waits for `100 Continue`: invite it (once)."""
        current, responder, transport = self._current, self._responder, self._transport
        if current is None or current.content is not stream or self._state != OPEN or transport is None:
            return
        if responder is not None and not responder.started and not stream.received and not stream.is_eof():
            transport.write(CONTINUE)
        self._body_begins(stream)  # its deadlines run from now (or from the first read if it did not wait)

    def detach(self) -> tuple[asyncio.Transport, bytes]:
        transport, tail = self._detach()
        if self._task is not None:
            self.server.keep(self._task)  # the relay runs in it; this connection is about to be dropped
        self.server.forget(self)
        return transport, tail
