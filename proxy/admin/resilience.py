"""Admin endpoints of the resilience features: reset a route's guard; guards and breakers at a glance.

Mounted by admin/app.py behind the bearer token. Owns no state: it reads and resets what
resilience.Resilience keeps.
"""

from __future__ import annotations

from aiohttp import web

from proxy.dataplane.keys import RESILIENCE, STORE
from strangler_common.web import json_error

__all__ = ["circuits", "guard_state", "reset_guard"]


async def reset_guard(request: web.Request) -> web.StreamResponse:
    """POST /routes/{name}/guard/reset: the route gets its configured percentage back."""
    name = request.match_info["name"]
    if request.app[STORE].current.table.route(name) is None:
        return json_error(404, "unknown_route", f"there is no route named {name!r}")
    was = request.app[RESILIENCE].reset_guard(name)
    if was is None:
        return json_error(409, "no_guard", f"route {name!r} has no guard block")
    return web.json_response({"route": name, "was_tripped": was, "tripped": False})


def guard_state(request: web.Request, route: str) -> dict[str, object]:
    """{"guard": ...} for GET /routes, or {} for a route without a guard block."""
    resilience = request.app[RESILIENCE]
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


def circuits(request: web.Request) -> dict[str, str]:
    return dict(request.app[RESILIENCE].breakers.states())
