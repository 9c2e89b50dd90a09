"""The admin listener's view of shadow mode: the kept mismatches and the learned noise.

  GET  /shadow/mismatches?route=images&limit=20   newest first; without `route`, every route's
  GET  /shadow/noise?route=images                 each learned field path: when, from how many pairs
  POST /shadow/noise/reset?route=images           forget a route's learned noise (`route` required)

Owns the query parsing and the JSON of these endpoints; admin/app.py mounts them behind the bearer token.
Bad parameters are 400 with the JSON error shape; a route that is neither configured nor recorded is 404.
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from aiohttp import web

from proxy.dataplane.keys import SHADOW, STORE
from strangler_common.web import json_error

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "reset_noise", "show_mismatches", "show_noise"]

MAX_LIMIT = 10_000  # the most a route can keep (shadow.keep_mismatches)
DEFAULT_LIMIT = 20
_log = structlog.get_logger("proxy.admin")


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
        unknown = _unknown_route(request, route, recorded=shadower.store.count(route) > 0)
        if unknown is not None:
            return unknown
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


def _unknown_route(request: web.Request, route: str, *, recorded: bool) -> web.Response | None:
    configured = {r.name for r in request.app[STORE].current.table.routes}
    if route in configured or recorded:
        return None
    known = ", ".join(sorted(configured)) or "none"
    return json_error(404, "unknown_route", f"no route named {route!r} (routes: {known})")


def _noise_json(request: web.Request, route: str) -> dict[str, object]:
    noise = request.app[SHADOW].noise
    return {
        "pairs": noise.pairs(route),
        "paths": [
            {"path": e.path, "learned_at": _iso(e.learned_at), "last_seen_at": _iso(e.last_seen_at),
             "pairs": e.pairs}
            for e in noise.entries(route)
        ],
    }  # fmt: skip


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, tz=UTC).isoformat(timespec="seconds")


async def show_noise(request: web.Request) -> web.StreamResponse:
    """Every route's learned noise, or one route's (`route`): only JSON body field paths are ever noise."""
    noise = request.app[SHADOW].noise
    route = request.query.get("route")
    if route is not None:
        unknown = _unknown_route(request, route, recorded=bool(noise.paths(route)))
        if unknown is not None:
            return unknown
    names = [route] if route is not None else noise.routes()
    return web.json_response({"route": route, "noise": {name: _noise_json(request, name) for name in names}})


async def reset_noise(request: web.Request) -> web.StreamResponse:
    route = request.query.get("route")
    if not route:
        return json_error(400, "invalid_parameter", "route is required: POST /shadow/noise/reset?route=NAME")
    noise = request.app[SHADOW].noise
    unknown = _unknown_route(request, route, recorded=bool(noise.paths(route)))
    if unknown is not None:
        return unknown
    forgotten = noise.reset(route)
    _log.info("shadow_noise_reset", route=route, paths=forgotten)
    return web.json_response({"route": route, "forgotten": forgotten})
