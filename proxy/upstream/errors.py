"""How an upstream exchange fails, as proxy.client.UpstreamError kinds.

connect (refused, unreachable, DNS, TLS handshake, certificate verification), timeout (the connect
timeout is a connection failure; a slow head or a stalled body is not), reset (the connection closed
before the response head was complete), protocol (a malformed response, a body cut short, an upgrade).
Also the two errors that are not the upstream's: ResponseTooLarge (the caller's read limit) and
BodyLengthError (the caller's body stream disagreed with the length it declared). Details name the
upstream's origin and what happened, never a request's target or headers.
"""

from __future__ import annotations

import ssl

from proxy.client import UpstreamError

__all__ = [
    "BodyLengthError", "ResponseTooLarge", "connect_failed", "connect_timed_out", "cut_short", "malformed",
    "reset", "timed_out", "upgrade",
]  # fmt: skip


class ResponseTooLarge(Exception):
    """Response.read(limit) met more than `limit` body bytes; the connection was closed."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"response body over {limit} bytes")
        self.limit = limit


class BodyLengthError(Exception):
    """A request body stream sent with `content_length` ended short of it or ran past it; the connection
    was closed (the upstream saw a request cut short, never a complete-looking one)."""


def connect_failed(origin: str, exc: OSError) -> UpstreamError:
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = exc.verify_message or exc.reason or "refused"
        detail = f"TLS certificate verification failed for {origin}: {why}"
    elif isinstance(exc, ssl.SSLError):
        detail = f"TLS handshake with {origin} failed: {exc.reason or exc}"
    else:
        detail = f"connect to {origin} failed: {exc.strerror or exc or type(exc).__name__}"
    return UpstreamError("connect", timeout=False, detail=detail, connection_failure=True)


def connect_timed_out(origin: str, timeout_s: float) -> UpstreamError:
    detail = f"connect to {origin} timed out after {timeout_s:g} s"
    return UpstreamError("timeout", timeout=True, detail=detail, connection_failure=True)


def timed_out(origin: str, what: str, timeout_s: float) -> UpstreamError:
    return UpstreamError("timeout", timeout=True, detail=f"{origin} {what} for {timeout_s:g} s")


def reset(origin: str, exc: BaseException | None) -> UpstreamError:
    cause = f": {exc}" if exc is not None and str(exc) else ""
    detail = f"{origin} closed the connection before the response head{cause}"
    return UpstreamError("reset", timeout=False, detail=detail, connection_failure=True)


def cut_short(origin: str, exc: BaseException | None) -> UpstreamError:
    cause = f": {exc}" if exc is not None and str(exc) else ""
    detail = f"{origin} closed the connection before the end of the response body{cause}"
    return UpstreamError("protocol", timeout=False, detail=detail)


def malformed(origin: str, exc: Exception) -> UpstreamError:
    return UpstreamError("protocol", timeout=False, detail=f"malformed response from {origin}: {exc}")


def upgrade(origin: str) -> UpstreamError:
    detail = f"{origin} answered 101 Switching Protocols, which this client does not support"
    return UpstreamError("protocol", timeout=False, detail=detail)
