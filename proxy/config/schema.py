"""The routes.yaml schema: pydantic models, frozen, extra="forbid", strict types.

Owns: every single-field rule and the in-model shape rules (exactly one of path_prefix or
path_regex; a flag's one source and one comparison). Does not own: rules between fields and the
wording of pydantic's own errors (config_checks.py), reading files and YAML (config.py).

Types are strict: a boolean, a number or a date where text is expected is an error, never a
silent conversion (`equals: 0755` would otherwise be 493). Import these names from proxy.config.
"""

from __future__ import annotations

import ipaddress
import math
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from proxy.config.base import TOKEN, Method, StrictModel, check_path_regex, check_percent, fail
from proxy.config.checks import NAME, NAME_RULE, cross_checks
from proxy.config.paths import BadPath, normalize_path
from proxy.config.resilience import Circuit, Fallback, Guard, Limits, Owner
from proxy.config.shadow import Shadow
from proxy.config.yamlsource import format_path

_STICKY = re.compile(r"(header|cookie|query):(.+)|client_ip")


def check_name(value: str, what: str) -> str:
    if not NAME.fullmatch(value):
        raise fail(f"{what} {value!r} {NAME_RULE}")
    return value


def _sticky_source(value: str) -> str:
    found = _STICKY.fullmatch(value)
    if not found or (found.group(1) in ("header", "cookie") and not TOKEN.fullmatch(found.group(2))):
        raise fail(f"{value!r} must be header:NAME, cookie:NAME, query:NAME or client_ip")
    return value


def _flag_value(value: str) -> str:
    if not value:
        raise fail("must not be empty (an empty value never matches)")
    return value


def _cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise fail(f"{value!r} is not a CIDR ({exc})") from exc
    return value


StickySource = Annotated[str, AfterValidator(_sticky_source)]
Cidr = Annotated[str, AfterValidator(_cidr)]
FlagValue = Annotated[str, AfterValidator(_flag_value)]


class Upstream(StrictModel):
    url: str
    connect_timeout_s: float = 2.0
    timeout_s: float = 60.0
    circuit: Circuit = Field(default_factory=Circuit)  # the breaker in front of this upstream
    # At most this many requests in flight to this upstream (per proxy process); a request that finds
    # them all busy waits up to queue_timeout_s for one, then gets 503 upstream_busy (Retry-After).
    max_connections: int = 512
    queue_timeout_s: float = 1.0

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


class Match(StrictModel):
    path_prefix: str | None = None
    path_regex: str | None = None
    methods: list[Method] | None = None  # None: every method

    @field_validator("path_prefix")
    @classmethod
    def _prefix(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            normal = normalize_path(value)
        except BadPath as exc:
            raise fail(f"is not a usable path: {exc}") from exc
        if value != "/" and value.endswith("/"):
            raise fail(f"must not end with '/' (prefixes match whole segments: write {value.rstrip('/')!r})")
        if normal != value:
            raise fail(f"must be written in normalized form: {normal!r}")
        return value

    @field_validator("path_regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        return None if value is None else check_path_regex(value)

    @field_validator("methods")
    @classmethod
    def _methods(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise fail("must not be empty (leave it out to match every method)")
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _exactly_one_path(self) -> Match:
        if (self.path_prefix is None) == (self.path_regex is None):
            raise fail("needs exactly one of path_prefix or path_regex")
        return self


class Rollout(StrictModel):
    percent: float
    sticky_key: list[StickySource] = Field(default_factory=lambda: ["client_ip"])
    on_missing_key: Literal["primary", "candidate", "random"] = "primary"
    salt: str | None = None  # filled with the route name when left out

    @field_validator("percent")
    @classmethod
    def _percent(cls, value: float) -> float:
        return check_percent(value)

    @field_validator("sticky_key")
    @classmethod
    def _sticky(cls, value: list[str]) -> list[str]:
        if not value:
            raise fail("must not be empty (leave it out for [client_ip])")
        return value

    @field_validator("salt")
    @classmethod
    def _salt(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value:
            raise fail("must not be empty")
        return value


class Flag(StrictModel):
    header: str | None = None
    cookie: str | None = None
    query: str | None = None
    equals: str | None = None
    in_: list[FlagValue] | None = Field(default=None, alias="in")
    use: Literal["primary", "candidate"]

    @field_validator("header", "cookie")
    @classmethod
    def _token(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not TOKEN.fullmatch(value):
            raise fail(f"{value!r} is not a valid name")
        return value

    @field_validator("query", "equals")
    @classmethod
    def _not_empty(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value:
            raise fail("must not be empty")
        return value

    @field_validator("in_")
    @classmethod
    def _in(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise fail("must list at least one value")
        return value

    @model_validator(mode="after")
    def _shape(self) -> Flag:
        if sum(source is not None for source in (self.header, self.cookie, self.query)) != 1:
            raise fail("needs exactly one of header, cookie or query")
        if (self.equals is None) == (self.in_ is None):
            raise fail("needs exactly one of equals or in")
        return self

    @property
    def source(self) -> tuple[str, str]:
        """("header" | "cookie" | "query", name)."""
        for kind in ("header", "cookie", "query"):
            name = getattr(self, kind)
            if name is not None:
                return kind, name
        raise AssertionError("validated flags have exactly one source")  # pragma: no cover

    @property
    def values(self) -> tuple[str, ...]:
        return (self.equals,) if self.equals is not None else tuple(self.in_ or ())


class Route(StrictModel):
    name: str
    match: Match
    primary: str
    candidate: str | None = None
    rollout: Rollout | None = None
    flags: list[Flag] = Field(default_factory=list)
    shadow: Shadow | None = None  # mirror primary-served requests to the candidate (schema_shadow.py)
    fallback: Fallback | None = None  # replay to the primary when the candidate fails (schema_resilience.py)
    guard: Guard | None = None  # roll back to 0 % when the candidate's error rate is too high
    ownership: list[Owner] = Field(default_factory=list)  # data reads go to the side that holds the data
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
