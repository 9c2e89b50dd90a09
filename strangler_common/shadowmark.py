"""The shadow marker: how the proxy tells a service "this is a comparison copy: generate, keep nothing".

Owns the headers only the proxy may send (INTERNAL_HEADERS: stripped from every client request by
the proxy), the marker's format, signing and verifying it. No I/O; the clock is an argument
(ShadowGate's defaults to time.time).

A bare marker would let any client skip storage and idempotency, and on the Lambda behind API Gateway
(reachable without the proxy) make the service generate with nothing recorded. So the marker carries
an HMAC-SHA256, under a key shared by the proxy and the services, over the request id and a timestamp:

    X-Strangler-Shadow: v1.<unix seconds>.<64 hex digits of HMAC(key, "v1.<seconds>.<request id>")>

A service treats a request as a shadow copy only when the signature checks out for the request's own
X-Request-ID and the timestamp is within MAX_SKEW_S of its clock (ShadowGate). Anything else (no key
configured, an unsigned "1", a forged or stale signature) is a normal request: the verdict is only
counted, never answered, so a sender learns nothing from trying.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Literal

__all__ = [
    "INTERNAL_HEADERS", "MAX_SKEW_S", "MIN_KEY_BYTES", "SHADOW_HEADER", "ShadowGate", "Verdict", "sign",
    "verify",
]

SHADOW_HEADER = "X-Strangler-Shadow"
# Every header the proxy uses to speak to its upstreams. A client's copy of any of them is removed on
# every path (live, fallback replay, WebSocket handshake, shadow copy) before the proxy adds its own.
INTERNAL_HEADERS: tuple[str, ...] = (SHADOW_HEADER,)
MAX_SKEW_S = 60  # a copy is sent within seconds of its request; clocks of two hosts may differ a little
MIN_KEY_BYTES = 32
_VERSION = "v1"

# signed: a genuine copy. absent: no marker. ignored: a marker, but this service has no key.
# unsigned: not in the signed format (e.g. "1"). forged: the signature does not match. expired: too old
# or from the future.
Verdict = Literal["signed", "absent", "ignored", "unsigned", "forged", "expired"]


def _mac(key: bytes, seconds: int, request_id: str) -> str:
    message = f"{_VERSION}.{seconds}.{request_id}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign(key: bytes, request_id: str, *, now: float) -> str:
    seconds = int(now)
    return f"{_VERSION}.{seconds}.{_mac(key, seconds, request_id)}"


def verify(key: bytes | None, value: str | None, request_id: str | None, *, now: float) -> Verdict:
    """Whether `value` (the marker header as received) is the proxy's signature for `request_id`."""
    if value is None:
        return "absent"
    if key is None:
        return "ignored"
    version, _, rest = value.strip().partition(".")
    stamp, _, digest = rest.partition(".")
    well_formed = stamp.isascii() and stamp.isdigit() and len(stamp) <= 12 and len(digest) == 64
    if version != _VERSION or not well_formed:
        return "unsigned"
    if not request_id:
        return "forged"
    seconds = int(stamp)
    # Compared before the age check, in constant time: a stale genuine marker and a forged one differ.
    if not hmac.compare_digest(digest.lower(), _mac(key, seconds, request_id)):
        return "forged"
    if abs(now - seconds) > MAX_SKEW_S:
        return "expired"
    return "signed"


class ShadowGate:
    """A service's side: decides whether a request is a genuine shadow copy, and reports every verdict
    on a request that carried a marker (`report`, e.g. a counter by verdict). Never raises."""

    __slots__ = ("_clock", "_key", "_report")

    def __init__(
        self, key: bytes | None, *, report: Callable[[Verdict], None], clock: Callable[[], float] = time.time
    ) -> None:
        self._key, self._report, self._clock = key, report, clock

    @property
    def armed(self) -> bool:
        """Whether a marker can be honoured at all (a key is configured)."""
        return self._key is not None

    def is_shadow(self, marker: str | None, request_id: str | None) -> bool:
        verdict = verify(self._key, marker, request_id, now=self._clock())
        if verdict != "absent":
            self._report(verdict)
        return verdict == "signed"
