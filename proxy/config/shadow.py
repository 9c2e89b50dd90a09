"""The `shadow` block of a route in routes.yaml: pydantic models, frozen, extra="forbid", strict.

Owns: the single-field rules of `shadow`, `shadow.compare` and `shadow.noise_baseline`. Rules that
span fields (a candidate to mirror to, methods the route matches) are in checks.py; schema.py
puts `Shadow` on a route.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator

from proxy.config.base import TOKEN, Method, Percent, StrictModel, bounded, fail
from proxy.config.fieldpaths import PathSyntaxError, parse_path

__all__ = ["HeaderName", "IgnorePath", "Mirrored", "NoiseBaseline", "Shadow", "ShadowCompare"]


def _header(value: str) -> str:
    if not TOKEN.fullmatch(value):
        raise fail(f"{value!r} is not a header name")
    return value.lower()


def _ignore_path(value: str) -> str:
    try:
        parse_path(value)
    except PathSyntaxError as exc:
        raise fail(f"{value!r} is not a field path like 'id' or 'images[*].url': {exc}") from exc
    return value


HeaderName = Annotated[str, AfterValidator(_header)]
IgnorePath = Annotated[str, AfterValidator(_ignore_path)]


def _check_methods(value: list[str]) -> list[str]:
    if not value:
        raise fail("must not be empty (set percent: 0 to turn it off)")
    return list(dict.fromkeys(value))


Mirrored = Annotated[list[Method], AfterValidator(_check_methods)]  # methods to mirror: listed, not empty


class ShadowCompare(StrictModel):
    status: bool = True
    headers: list[HeaderName] = Field(default_factory=list)
    ignore: list[IgnorePath] = Field(default_factory=list)
    images: Literal["dimensions", "bytes", "off"] = "dimensions"

    @field_validator("headers", "ignore")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class NoiseBaseline(StrictModel):
    percent: Percent = 0.0
    methods: Mirrored = Field(default_factory=lambda: ["GET", "HEAD"])


class Shadow(StrictModel):
    percent: Percent
    methods: Mirrored = Field(default_factory=lambda: ["GET", "HEAD"])
    max_in_flight: int = 32
    max_body_bytes: int = 1024 * 1024
    timeout_s: float = 30.0
    compare: ShadowCompare = Field(default_factory=ShadowCompare)
    noise_baseline: NoiseBaseline = Field(default_factory=NoiseBaseline)
    keep_mismatches: int = 100
    # The two bodies of kept mismatches (JSON and image answers), for the migration console: at most this
    # many bytes per route, oldest dropped first (proxy/shadow/samples.py); 0 keeps none.
    keep_bodies_bytes: int = 8 * 1024 * 1024
    sample_by: Literal["request_id", "sticky_key"] = "request_id"
    # Copies a minute this replica may send (a token bucket; bursts up to this many). None: unlimited,
    # allowed only when every mirrored method is safe (checks.py requires it otherwise).
    max_per_minute: int | None = None

    @field_validator("max_per_minute")
    @classmethod
    def _per_minute(cls, value: int | None) -> int | None:
        return None if value is None else bounded(value, 1, 1_000_000)

    @field_validator("max_in_flight")
    @classmethod
    def _in_flight(cls, value: int) -> int:
        return bounded(value, 1, 10_000)

    @field_validator("keep_mismatches")
    @classmethod
    def _keep(cls, value: int) -> int:
        return bounded(value, 1, 10_000)

    @field_validator("keep_bodies_bytes")
    @classmethod
    def _bodies(cls, value: int) -> int:
        return bounded(value, 0, 256 * 1024 * 1024)

    @field_validator("max_body_bytes")
    @classmethod
    def _body(cls, value: int) -> int:
        if not 1 <= value <= 64 * 1024 * 1024:
            raise fail("must be between 1 and 67108864 (64 MiB): both bodies are held in memory")
        return value

    @field_validator("timeout_s")
    @classmethod
    def _timeout(cls, value: float) -> float:
        if not (math.isfinite(value) and value > 0):
            raise fail("must be a number of seconds greater than 0")
        return value
