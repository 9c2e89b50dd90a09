"""The phases of an upstream connection and the marks of its read flow control: the few constants that
connection.py (which moves a connection through them) and response.py (which reads in them) share.

IDLE (in the pool) → HEAD (the request goes out, the response head is awaited) → BODY → DONE; FAILED
keeps the error an exchange met; CLOSED is a connection the caller or the pool let go of.
"""

from __future__ import annotations

__all__ = ["BODY", "CLOSED", "DONE", "FAILED", "HEAD", "HIGH_WATER", "IDLE", "LOW_WATER"]

IDLE, HEAD, BODY, DONE, FAILED, CLOSED = range(6)

# Body bytes buffered for a slow reader: above HIGH_WATER the socket stops being read (the upstream's
# TCP window fills and it waits); once the reader drains the buffer to LOW_WATER, reading resumes.
HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024
