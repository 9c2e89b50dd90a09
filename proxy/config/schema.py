"""The routes.yaml schema: pydantic models, frozen, extra="forbid", strict types.

Owns: the whole Config, its Upstreams and its Routes, with their single-field rules. Does not own:
what a route matches and how it splits (routes.py: Match, Rollout, Flag), the resilience, shadow and
progressive blocks (resilience.py, shadow.py, progressive.py), rules between fields and the wording of
pydantic's own errors (checks.py), reading files and YAML (loader.py, yamlsource.py).

Types are strict: a boolean, a number or a date where text is expected is an error, never a
silent conversion (`equals: 0755` would otherwise be 493). Import these names from proxy.config.
"""

from __future__ import annotations

import ipaddress
import math
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from proxy.config.base import StrictModel, fail
from proxy.config.checks import NAME, NAME_RULE, cross_checks
from proxy.config.progressive import Progressive
from proxy.config.resilience import Circuit, Fallback, Guard, Limits, Owner
from proxy.config.routes import Flag, Match, Rollout
from proxy.config.shadow import Shadow
from proxy.config.yamlsource import format_path

__all__ = ["Cidr", "Config", "Route", "Upstream", "check_name"]


def check_name(value: str, what: str) -> str:
    if not NAME.fullmatch(value):
        raise fail(f"{what} {value!r} {NAME_RULE}")
    return value


def _cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise fail(f"{value!r} is not a CIDR ({exc})") from exc
    return value


Cidr = Annotated[str, AfterValidator(_cidr)]


class Upstream(StrictModel):
    url: str
    connect_timeout_s: float = 2.0
    timeout_s: float = 60.0
    circuit: Circuit = Field(default_factory=Circuit)  # the breaker in front of this upstream
    # At most this many requests in flight to this upstream (per proxy process); a request that finds
    # them all busy waits up to queue_timeout_s for one, then gets 503 upstream_busy (Retry-After).
    max_connections: int = 512
    queue_timeout_s: float = 1.0
    # https:// only: a PEM file of the CA certificates to trust for this upstream instead of the system's
    # (an absolute path; the file is checked when the config is loaded). Verification is never off.
    ca_bundle: str | None = None

    @field_validator("ca_bundle")
    @classmethod
    def _ca_bundle(cls, value: str | None) -> str | None:
        if value is not None and not PurePosixPath(value).is_absolute():
            raise fail("must be an absolute path to a PEM file of CA certificates")
        return value

    @model_validator(mode="after")
    def _bundle_needs_tls(self) -> Upstream:
        if self.ca_bundle is not None and not self.url.startswith("https://"):
            raise fail("ca_bundle is for https:// upstreams only")
        return self

    @field_validator("max_connections")
    @classmethod
    def _max_connections(cls, value: int) -> int:
        if not 1 <= value <= 100_000:
            raise fail("must be between 1 and 100000")
        return value

    @field_validator("queue_timeout_s")
    @classmethod
    def _queue_timeout(cls, value: float) -> float:
        if not (math.isfinite(value) and 0 <= value <= 60):
            raise fail("must be a number of seconds from 0 to 60")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise fail("must be an http:// or https:// URL with a host")
        if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
            raise fail("must be scheme://host[:port] only (no path, query, fragment or credentials)")
        try:
            _ = parts.port
        except ValueError as exc:
            raise fail("has an invalid port") from exc
        return f"{parts.scheme}://{parts.netloc}"

    @field_validator("connect_timeout_s", "timeout_s")
    @classmethod
    def _positive(cls, value: float) -> float:
        if not (math.isfinite(value) and value > 0):
            raise fail("must be a number of seconds greater than 0")
        return value


class Route(StrictModel):
    name: str
    match: Match
    primary: str
    candidate: str | None = None
    rollout: Rollout | None = None
    flags: list[Flag] = Field(default_factory=list)
    shadow: Shadow | None = None  # mirror primary-served requests to the candidate (shadow.py)
    fallback: Fallback | None = None  # replay to the primary when the candidate fails (resilience.py)
    guard: Guard | None = None  # roll back to 0 % when the candidate's error rate is too high
    ownership: list[Owner] = Field(default_factory=list)  # data reads go to the side that holds the data
    progressive: Progressive | None = None  # steps rollout.percent up on evidence (proxy/rollout)
    # buffer: the whole body is read (memory, then a temporary file) before an upstream connection is
    # taken, so a slow upload never holds one (nginx's proxy_request_buffering). stream: bytes go on as
    # they arrive (long uploads that the upstream should see early; a slow client then holds a
    # connection of the upstream's for as long as it takes, up to limits.client_body_timeout_s).
    request_body: Literal["buffer", "stream"] = "buffer"

    @model_validator(mode="before")
    @classmethod
    def _default_salt(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        name, rollout = data.get("name"), data.get("rollout")
        if isinstance(name, str) and isinstance(rollout, dict):
            data = {**data, "rollout": {"salt": name, **rollout}}
        return data

    @property
    def salt(self) -> str:
        """What bucketing hashes with: the rollout's salt (filled with the route name by _default_salt,
        the one place that default is applied), or the name for a route without a rollout (its shadow
        sampling)."""
        rollout = self.rollout
        return rollout.salt if rollout is not None and rollout.salt is not None else self.name

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value == "default":
            raise fail("'default' is reserved for requests that match no route")
        return check_name(value, "route name")


class Config(StrictModel):
    version: Literal[1]
    upstreams: dict[str, Upstream]
    default_upstream: str
    trusted_proxies: list[Cidr] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)
    limits: Limits = Field(default_factory=Limits)

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        if type(value) is not int or value != 1:
            raise fail("must be 1 (the only schema version this proxy knows)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        # parse_config reports these with lines from the raw data; this guards direct construction.
        problems = cross_checks(self.model_dump(by_alias=True))
        if problems:
            text = "; ".join(f"{format_path(path)}: {message}" for path, message in problems)
            raise PydanticCustomError("cross_check", "{reason}", {"reason": text})
        return self
