"""The console's sessions: who logged in with the admin token, for how long, and each one's CSRF token.

Owns Session and Sessions. A session id is the value of an HttpOnly, SameSite=Strict cookie (login.py
sets it); its CSRF token goes into every form as a hidden field and must come back with every POST.
Bounded: at most MAX_SESSIONS (the least recently opened go first), each for TTL_S. In memory: a restart
logs everyone out, and the printed URL logs in again. Pure: the clock is passed in.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["MAX_SESSIONS", "TTL_S", "Session", "Sessions", "same"]

TTL_S = 12 * 3600.0
MAX_SESSIONS = 256


@dataclass(slots=True)
class Session:
    id: str
    csrf: str
    expires_at: float
    notice: str | None = None  # what the last action said, shown once on the next page


def same(supplied: str | None, expected: str) -> bool:
    """A constant-time comparison of a secret someone sent with the one expected."""
    return supplied is not None and hmac.compare_digest(supplied.encode(), expected.encode())


class Sessions:
    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, ttl_s: float = TTL_S, limit: int = MAX_SESSIONS
    ) -> None:
        self._clock = clock
        self._ttl_s = ttl_s
        self._limit = limit
        self._open: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._open)

    def open(self) -> Session:
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), self._clock() + self._ttl_s)
        self._open[session.id] = session
        while len(self._open) > self._limit:
            self._open.popitem(last=False)
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session of that id, or None (unknown, closed or expired: then forgotten)."""
        if not session_id:
            return None
        session = self._open.get(session_id)
        if session is None:
            return None
        if session.expires_at <= self._clock():
            del self._open[session_id]
            return None
        return session

    def close(self, session_id: str) -> None:
        self._open.pop(session_id, None)
