"""The routes.yaml models of what a route matches and how it splits: Match (path and methods), Rollout
(the percentage and its sticky key) and Flag (a header, cookie or query value that picks a side).

Owns their single-field rules and in-model shape rules (exactly one of path_prefix or path_regex; a
flag's one source and one comparison). Does not own the route itself, the upstreams or the whole
config (schema.py), nor the rules between fields (checks.py). Import these names from proxy.config.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from proxy.config.base import TOKEN, Method, Percent, StrictModel, check_path_regex, fail
from proxy.config.paths import BadPath, normalize_path

__all__ = ["Flag", "FlagValue", "Match", "Rollout", "StickySource"]

_STICKY = re.compile(r"(header|cookie|query):(.+)|client_ip")


def _sticky_source(value: str) -> str:
    found = _STICKY.fullmatch(value)
    if not found or (found.group(1) in ("header", "cookie") and not TOKEN.fullmatch(found.group(2))):
        raise fail(f"{value!r} must be header:NAME, cookie:NAME, query:NAME or client_ip")
    return value


def _flag_value(value: str) -> str:
    if not value:
        raise fail("must not be empty (an empty value never matches)")
    return value


StickySource = Annotated[str, AfterValidator(_sticky_source)]
FlagValue = Annotated[str, AfterValidator(_flag_value)]


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
    percent: Percent
    sticky_key: list[StickySource] = Field(default_factory=lambda: ["client_ip"])
    on_missing_key: Literal["primary", "candidate", "random"] = "primary"
    salt: str | None = None  # filled with the route name when left out

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
