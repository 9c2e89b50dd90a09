"""Admin operations of the resilience features: reset a route's guard; guards and breakers at a glance.

Served by local.py (a single process's AdminApi). Owns no state: it reads and resets what
resilience.Resilience keeps.
"""

from __future__ import annotations

from proxy.admin.api import Reply
from proxy.resilience.state import Resilience
from proxy.routing import RouteTable

__all__ = ["circuits", "guard_state", "reset_guard"]


def reset_guard(resilience: Resilience, table: RouteTable, name: str) -> Reply:
    """POST /routes/{name}/guard/reset: the route gets its configured percentage back."""
    if table.route(name) is None:
        return Reply.error(404, "unknown_route", f"there is no route named {name!r}")
    was = resilience.reset_guard(name)
    if was is None:
        return Reply.error(409, "no_guard", f"route {name!r} has no guard block")
    return Reply(200, {"route": name, "was_tripped": was, "tripped": False})


def guard_state(resilience: Resilience, route: str) -> dict[str, object]:
    """{"guard": ...} for GET /routes, or {} for a route without a guard block."""
    guard = resilience.guards.get(route)
    if guard is None:
        return {}
    requests, errors = guard.counts()
    trip = guard.trip
    return {
        "guard": {
            "tripped": trip is not None,
            "reason": trip.describe(guard.policy) if trip is not None else None,
            "window": {"requests": requests, "errors": errors},
        }
    }


def circuits(resilience: Resilience) -> dict[str, str]:
    return dict(resilience.breakers.states())
