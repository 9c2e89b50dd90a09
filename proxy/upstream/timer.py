"""The read timer of an exchange: read_timeout_s bounds the wait for the response head, then every gap
between body bytes (an idle stream times out, a long active one does not).

One loop.call_at per exchange, re-armed lazily: a read only stamps the time (Connection.last), and when
the timer fires it either fails the exchange or sleeps until the deadline that stamp implies. Only the
upstream's time counts: a reader slower than the upstream (reading paused) or a request body source
slower than the upstream never times out here. While the request is still going out (bytes left in the
transport's write buffer), the upstream owes reading it: the timer fails the exchange when that buffer
did not shrink for a read timeout (the first look only takes its measure, so an upstream that reads
nothing of a large request is caught within two read timeouts).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxy.upstream import errors
from proxy.upstream.state import BODY, HEAD

if TYPE_CHECKING:
    from proxy.upstream.connection import Connection

__all__ = ["arm", "expire"]


def arm(conn: Connection, now: float) -> None:
    """Start the clock for a new exchange (the request is about to go out)."""
    conn.last = now
    conn.timer = conn.loop.call_at(now + conn.read_timeout, expire, conn)


def expire(conn: Connection) -> None:
    conn.timer = None
    phase = conn.phase
    if phase != HEAD and phase != BODY:  # the exchange has ended since
        return
    now = conn.time()
    due = conn.last + conn.read_timeout
    if due > now:  # bytes came since the timer was set: sleep until the deadline they imply
        conn.timer = conn.loop.call_at(due, expire, conn)
        return
    if phase == BODY:
        if conn.read_paused:  # the upstream waits on a slow reader: look again later
            conn.timer = conn.loop.call_at(now + conn.read_timeout, expire, conn)
        else:
            conn.fail(errors.timed_out(conn.origin, "sent no body bytes", conn.read_timeout))
        return
    unsent = conn.transport.get_write_buffer_size()
    if unsent and (conn.unsent < 0 or unsent < conn.unsent):  # the upstream reads the request, if slowly
        conn.unsent = unsent
        conn.last = now
    elif unsent:
        conn.fail(errors.timed_out(conn.origin, "stopped reading the request", conn.read_timeout))
        return
    elif not conn.sending:
        conn.fail(errors.timed_out(conn.origin, "sent no response head", conn.read_timeout))
        return
    # else the body's source is slow, not the upstream
    conn.timer = conn.loop.call_at(now + conn.read_timeout, expire, conn)
