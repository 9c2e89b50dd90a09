"""The admin listener's view of shadow mode: the kept mismatches and the learned noise.

  GET  /shadow/mismatches?route=images&limit=20   newest first, each with its `ref`; without `route`, all
  GET  /shadow/mismatches/{ref}                   one kept mismatch, and which of its bodies were kept
  GET  /shadow/noise?route=images                 each learned field path: when, from how many pairs
  POST /shadow/noise/reset?route=images           forget a route's learned noise (`route` required)

Owns the query parsing and the JSON of these operations (local.py serves them as a single process's
AdminApi), and the whole kept bodies, which no JSON endpoint serves: the console reads them in-process
(sample), or, under `serve --workers N`, the parent from a worker's private socket (body_handler).
Bad parameters are 400 with the JSON error shape; a route that is neither configured nor recorded is 404.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime

import structlog
from aiohttp import web

from proxy.admin.api import Reply, Sample
from proxy.shadow.mirror import Shadower
from strangler_common.web import Handler

__all__ = [
    "DEFAULT_LIMIT", "MAX_LIMIT", "SIDES", "body_handler", "mismatch", "mismatches", "noise", "reset_noise",
    "sample",
]  # fmt: skip

MAX_LIMIT = 10_000  # the most a route can keep (shadow.keep_mismatches)
DEFAULT_LIMIT = 20
SIDES = ("primary", "candidate")
_log = structlog.get_logger("proxy.admin")


def mismatches(shadower: Shadower, configured: Collection[str], query: Mapping[str, str]) -> Reply:
    raw_limit = query.get("limit", str(DEFAULT_LIMIT))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
        why = f"limit must be a whole number from 1 to {MAX_LIMIT} (got {raw_limit!r})"
        return Reply.error(400, "invalid_parameter", why)
    route = query.get("route")
    if route is not None:
        unknown = _unknown_route(configured, route, recorded=shadower.store.count(route) > 0)
        if unknown is not None:
            return unknown
    entries = shadower.store.entries(route, int(raw_limit))
    noisy = [route] if route is not None else shadower.noise.routes()
    return Reply(200, {
        "route": route,
        "count": len(entries),
        "kept": dict(shadower.store.routes()),
        "noise": {name: shadower.noise.paths(name) for name in noisy},
        "mismatches": [{"ref": str(ref), **kept.to_json()} for ref, kept in entries],
    })  # fmt: skip


def mismatch(shadower: Shadower, ref: str) -> Reply:
    found = shadower.store.find(int(ref)) if ref.isdigit() else None
    if found is None:
        return Reply.error(404, "unknown_mismatch", f"no kept mismatch {ref!r}: it may have been dropped "
                           "for a newer one (shadow.keep_mismatches)")  # fmt: skip
    bodies = shadower.store.bodies(int(ref))
    kept: dict[str, object] = {}
    if bodies is not None:
        for side in SIDES:
            body = bodies.side(side)
            if body is not None:
                kept[side] = {"media_type": body.media_type, "bytes": len(body.data)}
    return Reply(200, {"ref": ref, **found.to_json(), "bodies": kept})


def sample(shadower: Shadower, ref: str, side: str) -> Sample | None:
    bodies = shadower.store.bodies(int(ref)) if ref.isdigit() else None
    body = bodies.side(side) if bodies is not None else None
    return Sample(body.media_type, body.data) if body is not None else None


def body_handler(shadower: Shadower) -> Handler:
    """GET /shadow/samples/{ref}/{side} on a worker's private socket only: the parent's console asks it."""

    async def handler(request: web.Request) -> web.StreamResponse:
        found = sample(shadower, request.match_info["ref"], request.match_info["side"])
        if found is None:
            raise web.HTTPNotFound(text="that body is not kept")
        return web.Response(body=found.data, content_type=found.media_type or "application/octet-stream")

    return handler


def _unknown_route(configured: Collection[str], route: str, *, recorded: bool) -> Reply | None:
    if route in configured or recorded:
        return None
    known = ", ".join(sorted(configured)) or "none"
    return Reply.error(404, "unknown_route", f"no route named {route!r} (routes: {known})")


def _noise_json(shadower: Shadower, route: str) -> dict[str, object]:
    memory = shadower.noise
    return {
        "pairs": memory.pairs(route),
        "paths": [
            {"path": e.path, "learned_at": _iso(e.learned_at), "last_seen_at": _iso(e.last_seen_at),
             "pairs": e.pairs}
            for e in memory.entries(route)
        ],
    }  # fmt: skip


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, tz=UTC).isoformat(timespec="seconds")


def noise(shadower: Shadower, configured: Collection[str], query: Mapping[str, str]) -> Reply:
    """Every route's learned noise, or one route's (`route`): only JSON body field paths are ever noise."""
    route = query.get("route")
    if route is not None:
        unknown = _unknown_route(configured, route, recorded=bool(shadower.noise.paths(route)))
        if unknown is not None:
            return unknown
    names = [route] if route is not None else shadower.noise.routes()
    return Reply(200, {"route": route, "noise": {name: _noise_json(shadower, name) for name in names}})


def reset_noise(shadower: Shadower, configured: Collection[str], query: Mapping[str, str]) -> Reply:
    route = query.get("route")
    if not route:
        return Reply.error(400, "invalid_parameter", "route is required: POST /shadow/noise/reset?route=NAME")
    unknown = _unknown_route(configured, route, recorded=bool(shadower.noise.paths(route)))
    if unknown is not None:
        return unknown
    forgotten = shadower.noise.reset(route)
    _log.info("shadow_noise_reset", route=route, paths=forgotten)
    return Reply(200, {"route": route, "forgotten": forgotten})
