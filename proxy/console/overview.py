"""The routes page's facts, one RouteView per route, from what the AdminApi answered (GET /routes and
GET /config bodies), the traffic figures of the last minutes and the controller's status.

Owns RouteView, route_views() and the sentence that says why a route runs at its percent (the config, a
tripped guard, the progressive controller). Pure: JSON bodies in, dataclasses out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from proxy.console.figures import Figures, Traffic

__all__ = ["RouteView", "describe_flag", "route_views"]

Body = Mapping[str, Any]


@dataclass(frozen=True)
class RouteView:
    name: str
    primary: str
    candidate: str | None
    percent: float  # effective: what the routing step uses now
    configured: float | None  # rollout.percent in routes.yaml (None without a rollout block)
    why: str
    flags: list[str]
    guard: Body | None  # GET /routes' guard entry, plus its policy from the config
    circuits: dict[str, str]  # upstream -> state, for this route's two upstreams
    sides: dict[str, Figures]  # primary, candidate (and shadow: the candidate's shadow calls)
    shadow: dict[str, int] = field(default_factory=dict)  # outcome -> copies, non-zero only
    match_rate: float | None = None
    shadowed: bool = False
    kept_mismatches: int = 0
    controller: Body | None = None  # the controller's GET /status entry for this route


def describe_flag(flag: Body) -> str:
    """`header X-Images-Backend = new → candidate`, `cookie uid in [a, b] → primary`."""
    source = next((kind for kind in ("header", "cookie", "query") if flag.get(kind)), "?")
    if flag.get("equals") is not None:
        test = f"= {flag['equals']}"
    else:
        test = "in [" + ", ".join(str(value) for value in flag.get("in") or []) + "]"
    return f"{source} {flag.get(source)} {test} → {flag.get('use')}"


def _why(route: Body, config: Body | None, controller: Body | None) -> str:
    guard = route.get("guard") or {}
    if guard.get("tripped"):
        return f"guard tripped ({guard.get('reason')}): the route runs at 0 % until a guard reset"
    if route.get("candidate") is None:
        return "no candidate: everything goes to the primary"
    if controller is not None:
        return (f"the progressive controller writes rollout.percent: phase {controller.get('phase')}, "
                f"step {controller.get('step')} of {len(controller.get('steps') or [])}")  # fmt: skip
    if config is not None and config.get("rollout") is not None:
        return "config: rollout.percent in routes.yaml"
    return "config: no rollout block"


def route_views(
    routes: Body, config: Body | None, traffic: Traffic, controller: Mapping[str, Body],
    kept: Mapping[str, int],
) -> list[RouteView]:  # fmt: skip
    """One view per route of GET /routes, in its order. `config`: GET /config's body (None when it could
    not be read: then no flags or configured percent); `kept`: kept mismatches per route."""
    configured = {r["name"]: r for r in (config or {}).get("config", {}).get("routes", [])}
    circuits = routes.get("circuits", {})
    views = []
    for route in routes.get("routes", []):
        name = route["name"]
        mine = configured.get(name)
        rollout = (mine or {}).get("rollout") or {}
        guard = route.get("guard")
        if guard is not None and mine is not None:
            guard = {**guard, "policy": mine.get("guard") or {}}
        shadow_block = (mine or {}).get("shadow") or {}
        views.append(RouteView(
            name=name, primary=route["primary"], candidate=route.get("candidate"), percent=route["percent"],
            configured=rollout.get("percent"), why=_why(route, mine, controller.get(name)),
            flags=[describe_flag(flag) for flag in (mine or {}).get("flags") or []], guard=guard,
            circuits={u: circuits[u] for u in (route["primary"], route.get("candidate")) if u in circuits},
            sides={role: traffic.side(name, role) for role in ("primary", "candidate", "shadow")},
            shadow={k: round(v) for k, v in traffic.shadow.get(name, {}).items() if v},
            match_rate=traffic.match_rate(name), shadowed=bool(shadow_block.get("percent")),
            kept_mismatches=kept.get(name, 0), controller=controller.get(name),
        ))  # fmt: skip
    return views
