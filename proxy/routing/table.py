"""The routing decision: which route a request belongs to and which upstream serves it.

Owns: RequestFacts (what the I/O side tells us about a request), Decision, compile_routes()
(Config -> RouteTable, once per load) and decide(). Pure: no I/O, no clock, no randomness;
the same facts and table always give the same decision.

Within a route: flags in order, first match wins (reason "flag"); then the sticky key (first
source present) picks a bucket, and bucket < percent * 100 goes to the candidate (reason
"percent"); with no key at all, on_missing_key decides (reason "missing_key"): primary,
candidate, or random, which hashes the request id so one request always gets one answer and
`percent` of keyless requests reach the candidate. (on_missing_key: candidate sends keyless
requests to the candidate even at 0 %: the operator asked for exactly that.) A route without
rollout sends everything (flags aside) to its primary with reason None.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network
from types import MappingProxyType
from typing import Literal

from proxy.config import Config, Limits, Route
from proxy.config.shadow import Shadow
from proxy.routing.bucketing import bucket, threshold
from proxy.routing.rules import FlagRule, KeySource, Methods, PathPrefix, PathRegex
from proxy.routing.segments import first_segment, index_by_segment

__all__ = [
    "CompiledRoute", "Decision", "Reason", "RequestFacts", "Role", "RouteTable", "UpstreamSpec",
    "compile_route", "compile_routes", "decide",
]  # fmt: skip

Role = Literal["primary", "candidate", "default"]
Reason = Literal["owner", "flag", "percent", "missing_key"]


@dataclass(frozen=True, slots=True)
class RequestFacts:
    method: str
    path: str  # normalized (paths.normalize_path)
    headers: Mapping[str, str]  # case-insensitive, e.g. aiohttp's CIMultiDictProxy
    cookies: Mapping[str, str]
    query: Mapping[str, str]
    client_ip: str  # clientip.resolve_client_ip; "" when unknown
    request_id: str


@dataclass(frozen=True, slots=True)
class Decision:
    route: str  # route name or "default"
    upstream: str  # upstream name to call
    role: Role = "default"
    reason: Reason | None = None
    # the route that decided (None for "default"): whoever acts on the decision never searches for it
    compiled: CompiledRoute | None = field(default=None, compare=False, repr=False)

    def to_primary(self) -> Decision:
        """The same decision, served by the route's primary (a tripped guard)."""
        route = self.compiled
        if route is None or self.role != "candidate":
            return self
        return Decision(self.route, route.primary, "primary", self.reason, route)


@dataclass(frozen=True)
class UpstreamSpec:
    name: str
    url: str  # scheme://host[:port], no trailing slash
    connect_timeout_s: float
    timeout_s: float
    max_connections: int = 512  # requests in flight at once (dataplane/upstreams.py); beyond, a short queue
    queue_timeout_s: float = 1.0
    ca_bundle: str | None = None  # https:// only: the CA certificates to trust instead of the system's


@dataclass(frozen=True)
class CompiledRoute:
    name: str
    primary: str
    candidate: str | None
    percent: float  # 0 when the route has no rollout
    path: PathPrefix | PathRegex
    methods: Methods
    flags: tuple[FlagRule, ...] = ()
    sticky_key: tuple[KeySource, ...] = ()
    on_missing_key: Literal["primary", "candidate", "random"] = "primary"
    salt: str = ""
    has_rollout: bool = False
    # the route's `shadow` block when it mirrors (percent > 0); the shadow package compiles its policy
    shadow: Shadow | None = None
    # (path pattern, side): data ownership, checked before everything else (reason "owner")
    owners: tuple[tuple[re.Pattern[str], Literal["primary", "candidate"]], ...] = ()
    threshold: int = field(init=False)  # basis points below which a bucket goes to the candidate
    # every decision this route can make, made once: deciding allocates nothing per request
    _decisions: Mapping[tuple[str, Reason | None], Decision] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "threshold", threshold(self.percent))
        made: dict[tuple[str, Reason | None], Decision] = {}
        for reason in (None, "owner", "flag", "percent", "missing_key"):
            made["primary", reason] = Decision(self.name, self.primary, "primary", reason, self)
            if self.candidate is not None:
                made["candidate", reason] = Decision(self.name, self.candidate, "candidate", reason, self)
        object.__setattr__(self, "_decisions", MappingProxyType(made))

    def matches(self, facts: RequestFacts) -> bool:
        return self.methods(facts.method) and self.path(facts.path)

    def decide(self, facts: RequestFacts) -> Decision:
        for pattern, owner in self.owners:
            if pattern.search(facts.path):
                return self._to(owner, "owner")
        for flag in self.flags:
            if flag(facts):
                return self._to(flag.use, "flag")
        if not self.has_rollout or self.candidate is None:
            return self._decisions["primary", None]
        for source in self.sticky_key:
            key = source.read(facts)
            if key is not None:
                return self._to(self._side(key), "percent")
        if self.on_missing_key == "random":
            return self._to(self._side(facts.request_id), "missing_key")
        return self._to("candidate" if self.on_missing_key == "candidate" else "primary", "missing_key")

    def shadow_key(self, facts: RequestFacts) -> str:
        """What shadow sampling hashes: the request id, or the sticky key when asked (and present)."""
        if self.shadow is not None and self.shadow.sample_by == "sticky_key":
            for source in self.sticky_key:
                key = source.read(facts)
                if key is not None:
                    return key
        return facts.request_id

    def _side(self, key: str) -> Literal["primary", "candidate"]:
        return "candidate" if bucket(key, salt=self.salt) < self.threshold else "primary"

    def _to(self, role: Literal["primary", "candidate"], reason: Reason) -> Decision:
        if role == "candidate" and self.candidate is not None:
            return self._decisions["candidate", reason]
        return self._decisions["primary", reason]


@dataclass(frozen=True)
class RouteTable:
    routes: tuple[CompiledRoute, ...]
    upstreams: Mapping[str, UpstreamSpec]
    default_upstream: str
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...]
    limits: Limits
    # route name -> compiled route, only for routes with a shadow block: empty means the request
    # path pays one truthiness check for shadowing, nothing more.
    shadowed: Mapping[str, CompiledRoute] = field(default_factory=lambda: MappingProxyType({}))
    # first path segment -> the routes that can match a path under it, in table order (see
    # index_by_segment); empty (a table built by hand) means decide() scans every route.
    by_segment: Mapping[str, tuple[CompiledRoute, ...]] = field(default_factory=lambda: MappingProxyType({}))
    # routes whose request bodies stream to the upstream (request_body: stream); every other route,
    # and a request that matches none, has its body buffered first (bodies.py)
    streamed: frozenset[str] = frozenset()
    # does any rule read cookies / the query (flags, sticky keys)? When not, the request path parses neither
    reads: frozenset[str] = frozenset({"cookie", "query"})
    default: Decision = field(init=False)  # what a request that matches no route gets

    def __post_init__(self) -> None:
        object.__setattr__(self, "default", Decision("default", self.default_upstream, "default", None))

    def route(self, name: str) -> CompiledRoute | None:
        """By name, for the admin API (the request path has it in its Decision)."""
        return next((route for route in self.routes if route.name == name), None)


def compile_route(route: Route) -> CompiledRoute:
    match = route.match
    path: PathPrefix | PathRegex
    if match.path_prefix is not None:
        path = PathPrefix(match.path_prefix)
    else:
        path = PathRegex(re.compile(match.path_regex or ""))
    rollout = route.rollout
    return CompiledRoute(
        name=route.name,
        primary=route.primary,
        candidate=route.candidate,
        percent=rollout.percent if rollout else 0.0,
        path=path,
        methods=Methods(frozenset(match.methods) if match.methods is not None else None),
        flags=tuple(
            FlagRule(KeySource.parse(f"{kind}:{name}"), frozenset(flag.values), flag.use)
            for flag in route.flags
            for kind, name in [flag.source]
        ),
        sticky_key=tuple(KeySource.parse(spec) for spec in rollout.sticky_key) if rollout else (),
        on_missing_key=rollout.on_missing_key if rollout else "primary",
        salt=route.salt,
        has_rollout=rollout is not None,
        owners=tuple((re.compile(owner.path_regex), owner.owner) for owner in route.ownership),
        shadow=route.shadow if route.shadow is not None and route.shadow.percent > 0 else None,
    )


def compile_routes(config: Config) -> RouteTable:
    """Everything that can be prepared is prepared here, once per load, never per request."""
    upstreams = {
        name: UpstreamSpec(
            name=name,
            url=spec.url,
            connect_timeout_s=spec.connect_timeout_s,
            timeout_s=spec.timeout_s,
            max_connections=spec.max_connections,
            queue_timeout_s=spec.queue_timeout_s,
            ca_bundle=spec.ca_bundle,
        )
        for name, spec in config.upstreams.items()
    }
    routes = tuple(compile_route(route) for route in config.routes)
    return RouteTable(
        routes=routes,
        upstreams=MappingProxyType(upstreams),
        default_upstream=config.default_upstream,
        trusted_proxies=tuple(ipaddress.ip_network(cidr) for cidr in config.trusted_proxies),
        limits=config.limits,
        shadowed=MappingProxyType({r.name: r for r in routes if r.shadow is not None and r.candidate}),
        by_segment=index_by_segment(routes),
        streamed=frozenset(route.name for route in config.routes if route.request_body == "stream"),
        reads=frozenset(
            source.kind for route in routes
            for source in (*(flag.source for flag in route.flags), *route.sticky_key)
        ),
    )


def decide(table: RouteTable, facts: RequestFacts) -> Decision:
    """First matching route wins; unmatched requests go to the default upstream."""
    index = table.by_segment
    routes = index.get(first_segment(facts.path)) or index.get("", ()) if index else table.routes
    for route in routes:
        if route.matches(facts):
            return route.decide(facts)
    return table.default
