"""The resilience blocks of routes.yaml: a route's `fallback` and `guard`, an upstream's `circuit`, and
the top-level `limits`. Pydantic models, frozen, extra="forbid", strict; every field has a safe default.

Owns the single-field rules of those blocks. schema.py puts them on Route, Upstream and Config; rules
between fields (a fallback or guard needs a candidate) are in checks.py.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator, model_validator

from proxy.config.base import StrictModel, bounded, check_path_regex, fail

__all__ = ["DEFAULT_WHEN", "Circuit", "Fallback", "Guard", "Limits", "Listed", "Owner"]

KiB, MiB = 1024, 1024 * 1024
Listed = Literal["connect_error", "timeout", "5xx", "404"]
DEFAULT_WHEN: tuple[Listed, ...] = ("connect_error", "timeout", "5xx")


def _seconds(value: float) -> float:
    if not (math.isfinite(value) and value > 0):
        raise fail("must be a number of seconds greater than 0")
    return value


class Fallback(StrictModel):
    """When the candidate fails in a listed way, replay the request to the primary (the rules:
    proxy/resilience/fallback.py)."""

    when: list[Listed] = Field(default_factory=lambda: list(DEFAULT_WHEN))
    max_body_bytes: int = 1 * MiB  # bodies up to this are buffered so they can be sent twice
    replay_non_idempotent: bool = False  # POST/PATCH also on timeout, reset and 5xx: may act twice

    @field_validator("when")
    @classmethod
    def _when(cls, value: list[Listed]) -> list[Listed]:
        if not value:
            raise fail("must list at least one of connect_error, timeout, 5xx, 404 (leave the block out)")
        return list(dict.fromkeys(value))

    @field_validator("max_body_bytes")
    @classmethod
    def _body(cls, value: int) -> int:
        return bounded(value, 0, 64 * MiB)


class Owner(StrictModel):
    """Data ownership during the migration: requests whose path matches go to the side that holds the
    data (the side that minted the id), whatever the rollout, the flags or the guard say."""

    path_regex: str
    owner: Literal["primary", "candidate"]

    @field_validator("path_regex")
    @classmethod
    def _regex(cls, value: str) -> str:
        return check_path_regex(value)


class Guard(StrictModel):
    """Roll the route back to 0 % when the candidate's error rate over the window is too high."""

    max_error_rate: float = 0.2
    min_requests: int = 20
    window_s: float = 60.0

    @field_validator("max_error_rate")
    @classmethod
    def _rate(cls, value: float) -> float:
        if not (math.isfinite(value) and 0 <= value < 1):
            raise fail("must be a fraction from 0 up to (not including) 1, e.g. 0.2 for 20 %")
        return value

    @field_validator("min_requests")
    @classmethod
    def _min(cls, value: int) -> int:
        return bounded(value, 1, 1_000_000)

    @field_validator("window_s")
    @classmethod
    def _window(cls, value: float) -> float:
        if _seconds(value) > 86_400:
            raise fail("must be at most 86400 (one day)")
        return value


class Circuit(StrictModel):
    """An upstream's circuit breaker (see proxy/resilience/breaker.py)."""

    failures: int = 5
    open_s: float = 5.0
    max_open_s: float = 60.0

    @field_validator("failures")
    @classmethod
    def _failures(cls, value: int) -> int:
        return bounded(value, 1, 10_000)

    @field_validator("open_s", "max_open_s")
    @classmethod
    def _positive(cls, value: float) -> float:
        return _seconds(value)

    @model_validator(mode="after")
    def _order(self) -> Circuit:
        if self.max_open_s < self.open_s:
            raise fail("max_open_s must be at least open_s")
        return self


class Limits(StrictModel):
    """What the public listener accepts from a client; each refusal is a JSON error."""

    max_body_bytes: int = 10 * MiB  # 413
    max_headers: int = 100  # 431: number of header lines
    max_header_bytes: int = 32 * KiB  # 431: all header lines together (names, values, ": ", CRLF)
    max_url_bytes: int = 8 * KiB  # 414: the request target (path and query)
    client_read_timeout_s: float = 30.0  # 408: to send the request head, and between body chunks
    client_body_timeout_s: float = 60.0  # 408: the whole request body, from its head to its last byte
    max_connections: int = 4096  # open client connections; beyond it new ones get 503 and are closed
    # Everything the proxy holds in memory for requests (buffered bodies, fallback replay copies,
    # shadow copies) comes out of this one process-wide budget; what does not fit is spooled to disk,
    # not replayed or not mirrored (each counted), never allocated beyond it.
    memory_budget_bytes: int = 64 * MiB
    # A buffered request body up to this size stays in memory; a larger one is spooled to a temporary
    # file (nginx's client_body_buffer_size).
    body_buffer_bytes: int = 64 * KiB
    # Bytes of buffered bodies spooled to temporary files at once; beyond it a body is refused (503).
    spool_budget_bytes: int = 1024 * MiB

    @field_validator("max_body_bytes")
    @classmethod
    def _body(cls, value: int) -> int:
        if value <= 0:
            raise fail("must be greater than 0")
        return value

    @field_validator("max_headers")
    @classmethod
    def _headers(cls, value: int) -> int:
        return bounded(value, 1, 1000)

    @field_validator("max_header_bytes", "max_url_bytes")
    @classmethod
    def _sizes(cls, value: int) -> int:
        return bounded(value, 256, 1 * MiB)

    @field_validator("client_read_timeout_s", "client_body_timeout_s")
    @classmethod
    def _timeout(cls, value: float) -> float:
        if _seconds(value) > 3600:
            raise fail("must be at most 3600")
        return value

    @field_validator("spool_budget_bytes")
    @classmethod
    def _spool(cls, value: int) -> int:
        return bounded(value, 0, 1024 * 1024 * MiB)

    @field_validator("memory_budget_bytes")
    @classmethod
    def _budget(cls, value: int) -> int:
        return bounded(value, 1 * MiB, 64 * 1024 * MiB)

    @field_validator("body_buffer_bytes")
    @classmethod
    def _buffer(cls, value: int) -> int:
        return bounded(value, 0, 64 * MiB)

    @field_validator("max_connections")
    @classmethod
    def _connections(cls, value: int) -> int:
        return bounded(value, 1, 1_000_000)
