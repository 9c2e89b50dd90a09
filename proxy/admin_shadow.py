"""The admin listener's view of shadow mode: `GET /shadow/mismatches?route=images&limit=20`.

Owns the query parsing and the JSON of that endpoint; admin.py mounts it behind the bearer token.
Newest first; without `route`, every route's mismatches together. Bad parameters are 400 with the
JSON error shape; a route that is neither configured nor recorded is 404.
"""

from __future__ import annotations

from aiohttp import web

from proxy.keys import SHADOW, STORE
from strangler_common.web import json_error

MAX_LIMIT = 10_000  # the most a route can keep (shadow.keep_mismatches)
DEFAULT_LIMIT = 20


async def show_mismatches(request: web.Request) -> web.StreamResponse:
    shadower = request.app[SHADOW]
    raw_limit = request.query.get("limit", str(DEFAULT_LIMIT))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
        return json_error(
            400,
            "invalid_parameter",
            f"limit must be a whole number from 1 to {MAX_LIMIT} (got {raw_limit!r})",
        )
    route = request.query.get("route")
    if route is not None:
        configured = {r.name for r in request.app[STORE].current.table.routes}
        if route not in configured and shadower.store.count(route) == 0:
            known = ", ".join(sorted(configured)) or "none"
            return json_error(404, "unknown_route", f"no route named {route!r} (routes: {known})")
    found = shadower.store.latest(route, int(raw_limit))
    noisy = [route] if route is not None else shadower.noise.routes()
    return web.json_response(
        {
            "route": route,
            "count": len(found),
            "kept": dict(shadower.store.routes()),
            "noise": {name: shadower.noise.paths(name) for name in noisy},
            "mismatches": [mismatch.to_json() for mismatch in found],
        }
    )
