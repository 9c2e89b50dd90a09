"""The admin listener's bearer-token check, and the brake on a peer that keeps failing it.

Every refused request is counted in `strangler_admin_auth_failures_total{reason}` (`missing`, `wrong`,
`throttled`; never a peer label: unbounded) and logged at WARNING with the peer address, never with
what was sent. A peer (the TCP peer's address) that sends a wrong token FREE_FAILURES times without
FORGET_S passing between two of them is throttled: for FIRST_BLOCK_S after that failure, doubling with
each further one up to MAX_BLOCK_S, its protected requests get 429 `too_many_auth_failures` with
`Retry-After`, and no token it sends is even compared, so guessing goes no faster than the blocks allow
(one guess per 30 s, instead of as fast as the listener answers). A missing token guesses nothing: it is
counted and logged but does not throttle. A success forgets the peer; other peers are not affected.
The table is bounded (MAX_PEERS, least recently failing first out).

`AuthThrottle` is pure (the clock is passed in); `judge` is the aiohttp side for a token however it came
(the console's login form and URL use it too), `check` judges the bearer header and answers JSON, and
`protected` wraps a handler in it: for a worker's admin app (app.py) and for the parent's under `serve
--workers N` (fanout.py), each with its own throttle (THROTTLE) and counter (AUTH_FAILURES) in the app's
state.
"""

from __future__ import annotations

import hmac
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from aiohttp import web
from prometheus_client import Counter

from proxy.dataplane.keys import ADMIN_TOKEN
from strangler_common.web import Handler, json_error

__all__ = [
    "AUTH_FAILURES", "FIRST_BLOCK_S", "FORGET_S", "FREE_FAILURES", "MAX_BLOCK_S", "MAX_PEERS", "THROTTLE",
    "AuthThrottle", "Refusal", "check", "judge", "protected",
]  # fmt: skip

_log = structlog.get_logger("proxy.admin")
FREE_FAILURES = 10  # wrong tokens a peer may send before it is throttled
FORGET_S = 60.0  # a peer's failures are forgotten after this long without one
FIRST_BLOCK_S = 1.0
MAX_BLOCK_S = 30.0
MAX_PEERS = 4096


@dataclass(slots=True)
class _Peer:
    failures: int = 0
    last_failure: float = 0.0
    blocked_until: float = 0.0


class AuthThrottle:
    """Failed authentications per peer, and how long each peer must wait before it may try again."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_peers: int = MAX_PEERS) -> None:
        self._clock = clock
        self._max_peers = max_peers
        self._peers: OrderedDict[str, _Peer] = OrderedDict()

    def __len__(self) -> int:
        return len(self._peers)

    def retry_after(self, peer: str) -> float | None:
        """Seconds `peer` must still wait, or None when it may try."""
        entry = self._peers.get(peer)
        if entry is None:
            return None
        left = entry.blocked_until - self._clock()
        return left if left > 0 else None

    def failed(self, peer: str) -> tuple[int, float | None]:
        """Count a failure: (failures in a row, seconds of the block it starts, or None)."""
        now = self._clock()
        entry = self._peers.pop(peer, None)
        if entry is None or now - entry.last_failure >= FORGET_S:
            entry = _Peer()
        self._peers[peer] = entry  # most recent last: the oldest goes first when the table is full
        while len(self._peers) > self._max_peers:
            self._peers.popitem(last=False)
        entry.failures += 1
        entry.last_failure = now
        if entry.failures < FREE_FAILURES:
            return entry.failures, None
        block = min(MAX_BLOCK_S, FIRST_BLOCK_S * 2 ** (entry.failures - FREE_FAILURES))
        entry.blocked_until = now + block
        return entry.failures, block

    def succeeded(self, peer: str) -> None:
        self._peers.pop(peer, None)


THROTTLE = web.AppKey("admin_auth_throttle", AuthThrottle)  # failed authentications per peer
AUTH_FAILURES = web.AppKey("admin_auth_failures", Counter)  # strangler_admin_auth_failures_total


def protected(handler: Handler) -> Handler:
    """`handler` behind the bearer token of the app's ADMIN_TOKEN; 403 when none is configured."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        expected = request.app.get(ADMIN_TOKEN)
        if not expected:
            return json_error(
                403,
                "admin_disabled",
                "no admin token is configured: set STRANGLER_ADMIN_TOKEN to use this endpoint",
            )
        refused = check(request, expected, request.app[THROTTLE], request.app[AUTH_FAILURES])
        if refused is not None:
            return refused
        return await handler(request)

    return guarded


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a token was refused: `missing`, `wrong` or `throttled` (then `retry_after_s`)."""

    reason: str
    retry_after_s: int | None = None


def judge(
    request: web.Request, supplied: str | None, expected: str, throttle: AuthThrottle, counter: Counter,
    *, sent: bool,
) -> Refusal | None:  # fmt: skip
    """None when `supplied` is the token; otherwise why not, counted in `counter` by reason, logged, and for
    a wrong one counted against the peer's throttle. `sent`: something was sent at all (else `missing`)."""
    peer = request.remote or "unknown"
    wait = throttle.retry_after(peer)
    if wait is not None:  # said once, when the block started; counted every time
        counter.labels("throttled").inc()
        return Refusal("throttled", math.ceil(wait))
    if supplied is not None and hmac.compare_digest(supplied.strip().encode(), expected.encode()):
        throttle.succeeded(peer)
        return None
    reason = "wrong" if sent else "missing"
    failures, block = throttle.failed(peer) if reason == "wrong" else (None, None)
    counter.labels(reason).inc()
    _log.warning("admin_auth_failed", peer=peer, reason=reason, method=request.method, path=request.path,
                 failures=failures, blocked_s=block)  # fmt: skip
    return Refusal(reason)


def check(
    request: web.Request, expected: str, throttle: AuthThrottle, counter: Counter
) -> web.StreamResponse | None:
    """None when the request carries the token as `Authorization: Bearer`; otherwise the 401 or 429 to
    answer with, counted in `counter` (strangler_admin_auth_failures_total) by reason."""
    header = request.headers.get("Authorization", "")
    scheme, _, supplied = header.partition(" ")
    bearer = supplied if scheme.lower() == "bearer" else None
    refused = judge(request, bearer, expected, throttle, counter, sent=bool(header.strip()))
    if refused is None:
        return None
    if refused.retry_after_s is not None:
        return json_error(
            429,
            "too_many_auth_failures",
            "too many failed authentications from this address; retry after the time given",
            headers={"Retry-After": str(refused.retry_after_s)},
        )
    return json_error(
        401,
        "unauthorized",
        "a valid 'Authorization: Bearer <token>' header is required",
        headers={"WWW-Authenticate": 'Bearer realm="strangler-admin"'},
    )
