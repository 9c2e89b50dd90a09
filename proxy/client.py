"""The proxy as an HTTP client of its upstreams, for the live path and the shadow path alike.

Owns the failures of a call (UpstreamError with its kind and whether it was a connection failure,
CircuitOpen), which proxy.upstream raises and the data plane answers, and the one place where the end
of a call is booked on a circuit breaker (settle). A leaf: imports nothing of the proxy, so the shadow
package, the data plane and the upstream client share it without an arrow between them.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Breaker", "CircuitOpen", "UpstreamError", "settle"]

class UpstreamError(Exception):
    """The upstream failed before the response headers reached the client."""

    def __init__(self, kind: str, *, timeout: bool, detail: str, connection_failure: bool = False) -> None:
        super().__init__(detail)
        self.kind = kind  # connect | timeout | reset | protocol | busy (the metric's label)
        self.timeout = timeout
        # refused or reset connections and connect timeouts (what opens a breaker), not slow answers
        self.connection_failure = connection_failure

    @property
    def status(self) -> int:
        return 504 if self.timeout else 502

    @property
    def code(self) -> str:
        return "upstream_timeout" if self.timeout else "upstream_unreachable"


class CircuitOpen(UpstreamError):
    """The upstream's breaker is open: it was not tried at all (502, and fallback as for connect_error)."""

    def __init__(self, upstream: str) -> None:
        detail = f"circuit open for upstream {upstream!r}: not tried"
        super().__init__("connect", timeout=False, detail=detail)


class Breaker(Protocol):
    """What settle() books on (resilience.breaker.CircuitBreaker)."""

    def success(self) -> str | None: ...
    def failure(self) -> str | None: ...
    def abandon(self) -> None: ...


def settle(breaker: Breaker, error: BaseException | None) -> str | None:
    """Book the end of one call: an answer (error None) is a success, a connection failure a failure,
    anything else (slow, cut short by the proxy or the client, refused by our own cap) says nothing
    about whether the upstream can be reached. Returns the state the breaker entered, if it changed."""
    if error is None:
        return breaker.success()
    if isinstance(error, UpstreamError) and error.connection_failure:
        return breaker.failure()
    breaker.abandon()
    return None
