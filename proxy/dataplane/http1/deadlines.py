"""The deadlines of one connection, checked by one timer per connection, re-armed lazily.

Owns Deadlines, the third layer of Http1Connection (parsing.py, flow.py, deadlines.py, connection.py).
Events only move deadlines (a float each); the timer, when it fires, compares them with the clock and
re-arms for the next one: no timer per read, no asyncio.wait_for. The deadlines, from the live limits:
a whole request head within client_read_timeout_s of the connection becoming free (a partial head then
gets 408; an idle kept-alive connection is closed without a word); a body gap of client_read_timeout_s
(counted only while the server is reading: a pause of its own is not the client's); a whole body within
client_body_timeout_s of its head (or of its `100 Continue`). A body past either fails its stream with
BodyReadTimeout, which the handler answers 408; the connection closes after the answer. Also owns the
bound on a line still being read (a header, trailer or chunk-size line that never ends).
"""

from __future__ import annotations

import math

from proxy.dataplane.errors import BodyReadTimeout, BodyTooLarge
from proxy.dataplane.http1.body import BodyStream
from proxy.dataplane.http1.flow import BODY, CLOSING, LINGER, OPEN, UPGRADE, Flow
from proxy.dataplane.http1.refusals import HEAD_TIMEOUT, Refused, header_too_large

__all__ = ["Deadlines"]


class Deadlines(Flow):
    __slots__ = ()

    def _answer(self, refused: Refused) -> None:
        raise NotImplementedError

    def _refuse_in_order(self, refused: Refused) -> None:
        raise NotImplementedError

    def _idle(self, now: float) -> None:
        """Free for the next request: its whole head is due client_read_timeout_s from now."""
        self._idle_since = now
        self._arm_by(now + self._limits.client_read_timeout_s)

    def _tick(self) -> None:
        self._timer = None
        if self._state != OPEN:
            if self._state in (LINGER, CLOSING) and self._transport is not None:
                self._transport.abort()  # lingered, or could not flush, long enough
            return
        now = self.loop.time()
        read_timeout = self._limits_of().client_read_timeout_s
        due = math.inf
        if self._waiting_for_head():
            due = self._idle_since + read_timeout
            if now >= due:
                self._head_timed_out()
                return
        stream = self._receiving
        if stream is not None and not stream.expecting:
            body_due = self._body_deadline
            if not self._paused:
                body_due = min(body_due, self._last_data + read_timeout)
            if now >= body_due:
                self._fail_body(stream, BodyReadTimeout())
            else:
                due = min(due, body_due)
        if due != math.inf:
            self._timer = self.loop.call_at(due, self._tick)

    def _body_begins(self, stream: BodyStream) -> None:
        now = self.loop.time()
        limits = self._limits
        self._last_data = now
        self._body_deadline = now + limits.client_body_timeout_s
        self._arm_by(now + min(limits.client_read_timeout_s, limits.client_body_timeout_s))

    def _fail_body(self, stream: BodyStream, exc: Exception) -> None:
        """The body cannot be completed: its reader gets `exc`, nothing more is parsed, and the connection
        closes after the answer."""
        stream.set_exception(exc)
        if self._receiving is stream:
            self._receiving = None
        self._parser_done = True
        self._closing_soon = True
        self._resume(BODY | UPGRADE)  # read and drop what the client still sends, until the answer is out

    def _head_timed_out(self) -> None:
        if self._in_head:
            self._answer(HEAD_TIMEOUT)
        else:
            self._close(linger=False)  # idle between requests: closed without a word

    def _line_too_long(self) -> None:
        """A line still being read (llhttp holds it whole until its end) has passed the limits."""
        if self._in_head:
            self._parser_done = True
            self._refuse_in_order(header_too_large(self._limits))
        elif self._receiving is not None:
            self._fail_body(self._receiving, BodyTooLarge())  # a trailer or chunk line without end
        else:
            self._quiet = 0  # empty lines between requests: llhttp skips them, nothing is held
