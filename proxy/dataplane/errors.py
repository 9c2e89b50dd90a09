"""What can go wrong with a client's request body, as exceptions the handler turns into JSON answers: 413
(BodyTooLarge), 408 (BodyReadTimeout); and Diverted (a fallback claimed the candidate's status before
anything reached the client). The upstream's own failures (502/504) are proxy.client.UpstreamError.
"""

from __future__ import annotations

__all__ = ["BodyReadTimeout", "BodyTooLarge", "Diverted"]


class BodyTooLarge(Exception):
    pass


class BodyReadTimeout(Exception):
    """The client paused its request body longer than limits.client_read_timeout_s (408). Set on the
    request's stream by the http1 server (http1/deadlines.py). Not a TimeoutError: that would read as
    the upstream timing out."""


class Diverted(Exception):
    """forward()'s `divert` claimed this status (fallback): nothing of the response reached the client."""

    def __init__(self, status: int) -> None:
        super().__init__(f"the upstream answered {status}")
        self.status = status
