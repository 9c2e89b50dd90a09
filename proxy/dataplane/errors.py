"""What can go wrong between the client, the proxy and one upstream, as exceptions the handler turns into
JSON answers: 413 (BodyTooLarge), 408 (BodyReadTimeout), 502/504 (UpstreamError, with `classify` for the
client library's exceptions), and Diverted (a fallback claimed the candidate's status before anything
reached the client).
"""

from __future__ import annotations

import asyncio

import aiohttp

__all__ = ["BodyReadTimeout", "BodyTooLarge", "Diverted", "UpstreamError", "classify"]


class BodyTooLarge(Exception):
    pass


class BodyReadTimeout(Exception):
    """The client paused its request body longer than limits.client_read_timeout_s (408). Set on the
    request's stream by frontdoor.py. Not a TimeoutError: that would read as the upstream timing out."""


class Diverted(Exception):
    """forward()'s `divert` claimed this status (fallback): nothing of the response reached the client."""

    def __init__(self, status: int) -> None:
        super().__init__(f"the upstream answered {status}")
        self.status = status


class UpstreamError(Exception):
    """The upstream failed before the response headers reached the client."""

    def __init__(self, kind: str, *, timeout: bool, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind  # connect | timeout | reset | protocol (the metric's label)
        self.timeout = timeout

    @property
    def status(self) -> int:
        return 504 if self.timeout else 502

    @property
    def code(self) -> str:
        return "upstream_timeout" if self.timeout else "upstream_unreachable"


def classify(exc: BaseException) -> UpstreamError:
    if isinstance(exc, asyncio.TimeoutError):  # includes aiohttp's connect and socket-read timeouts
        return UpstreamError("timeout", timeout=True, detail=str(exc) or type(exc).__name__)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamError("connect", timeout=False, detail=str(exc))
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError | ConnectionError):
        return UpstreamError("reset", timeout=False, detail=str(exc) or type(exc).__name__)
    return UpstreamError("protocol", timeout=False, detail=str(exc) or type(exc).__name__)
