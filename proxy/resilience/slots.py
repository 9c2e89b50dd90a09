"""A cap on requests in flight to one upstream, with a short, bounded queue in front of it.

Owns Slots: `limit` requests at once (an upstream's `max_connections`, resizable on reload); a request
that finds them all busy waits at most its queue timeout, first come first served, and is then refused
(the caller answers 503 upstream_busy). So one upstream's slowness, or one kind of client holding its
connections, fills that upstream's slots and nothing else: the others, and the proxy, keep serving.
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["Slots"]


class Slots:
    __slots__ = ("_waiters", "busy", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.busy = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self, timeout_s: float) -> bool:
        """True once a slot is ours; False when none came free within timeout_s."""
        if self.busy < self.limit and not self._waiters:
            self.busy += 1
            return True
        if timeout_s <= 0:
            return False
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout_s)
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():  # handed a slot just as time ran out: keep it
                return True
            waiter.cancel()
            return False
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot, then cancelled: pass it on
            else:
                waiter.cancel()
            raise
        return True

    def release(self) -> None:
        self.busy -= 1
        self._wake()

    def resize(self, limit: int) -> None:
        self.limit = limit
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.busy < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.busy += 1
                waiter.set_result(None)
