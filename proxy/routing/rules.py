"""Predicates of a route: path, method, flags, and where a sticky key is read from.

Owns: the small, compiled predicate objects table.py combines. Pure: they look only at the
request facts they are given. Arguments (regexes, names) are checked and compiled once, when
the table is built, never per request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = ["Facts", "FlagRule", "KeySource", "Methods", "PathPrefix", "PathRegex", "SourceKind"]

SourceKind = Literal["header", "cookie", "query", "client_ip"]


class Facts(Protocol):
    """What predicates may look at (routing.RequestFacts provides it)."""

    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def cookies(self) -> Mapping[str, str]: ...
    @property
    def query(self) -> Mapping[str, str]: ...
    @property
    def client_ip(self) -> str: ...


@dataclass(frozen=True, slots=True)
class PathPrefix:
    """Matches the prefix on segment boundaries, case-sensitively:
    /api/images matches /api/images and /api/images/x, never /api/imagesx."""

    prefix: str

    def __call__(self, path: str) -> bool:
        if self.prefix == "/":
            return True
        return path == self.prefix or path.startswith(self.prefix + "/")


@dataclass(frozen=True, slots=True)
class PathRegex:
    """re.search in the normalized path; the schema makes every pattern start with '^'."""

    pattern: re.Pattern[str]

    def __call__(self, path: str) -> bool:
        return self.pattern.search(path) is not None


@dataclass(frozen=True, slots=True)
class Methods:
    """None: every method. Otherwise the upper-cased names (HEAD is not implied by GET)."""

    allowed: frozenset[str] | None

    def __call__(self, method: str) -> bool:
        return self.allowed is None or method.upper() in self.allowed


@dataclass(frozen=True, slots=True)
class KeySource:
    """One place a value is read from: a header, cookie or query parameter, or the client address."""

    kind: SourceKind
    name: str = ""

    @classmethod
    def parse(cls, spec: str) -> KeySource:
        """'header:X-User-Id' | 'cookie:uid' | 'query:u' | 'client_ip' (validated by the schema)."""
        if spec == "client_ip":
            return cls("client_ip")
        kind, _, name = spec.partition(":")
        if kind == "header":
            return cls("header", name)
        if kind == "cookie":
            return cls("cookie", name)
        if kind == "query":
            return cls("query", name)
        raise ValueError(f"unknown key source {spec!r}")

    def read(self, facts: Facts) -> str | None:
        """The value, or None when absent or empty (an empty key would pool every such user)."""
        if self.kind == "client_ip":
            value: str | None = facts.client_ip
        elif self.kind == "header":
            value = facts.headers.get(self.name)  # the mapping is case-insensitive
        elif self.kind == "cookie":
            value = facts.cookies.get(self.name)
        else:
            value = facts.query.get(self.name)
        return value or None


@dataclass(frozen=True, slots=True)
class FlagRule:
    """`{header: X-Images-Backend, equals: new, use: candidate}`: exact, case-sensitive values."""

    source: KeySource
    values: frozenset[str]
    use: Literal["primary", "candidate"]

    def __call__(self, facts: Facts) -> bool:
        value = self.source.read(facts)
        return value is not None and value in self.values
