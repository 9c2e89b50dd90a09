"""The admin listener: /metrics /healthz /readyz, and behind a bearer token /config /routes /reload.

Served on its own port, never on the public one; a worker of `serve --workers N` serves it on a private
unix socket instead, which only the parent's admin listener (fanout.py) asks. It shares the public app's
state (the same config store, metrics and readiness probe), so a reload here is the reload the public
listener serves. The token check, with its count, log and per-peer brake on repeated failures, is auth.py.
"""

from __future__ import annotations

from aiohttp import web

from proxy.admin.auth import AUTH_FAILURES, THROTTLE, AuthThrottle, protected
from proxy.admin.resilience import circuits, guard_state, reset_guard
from proxy.admin.shadow import reset_noise, show_mismatches, show_noise
from proxy.dataplane.keys import (
    ADMIN_TOKEN,
    METRICS,
    READINESS,
    REGISTRY,
    RESILIENCE,
    SESSIONS,
    SHADOW,
    STORE,
)
from strangler_common.web import install_observability, json_error, metrics_handler

__all__ = ["THROTTLE", "create_admin_app", "healthz", "readyz", "reload", "show_config", "show_routes"]


def create_admin_app(
    public: web.Application, *, auth_throttle: AuthThrottle | None = None
) -> web.Application:
    """The admin app for `public` (made by proxy.app.create_app); the token comes from there.
    `auth_throttle`: the brake on repeated authentication failures (auth.py; a fresh one by default)."""
    admin = web.Application()
    admin[STORE] = public[STORE]
    admin[METRICS] = public[METRICS]
    admin[REGISTRY] = public[REGISTRY]
    admin[SESSIONS] = public[SESSIONS]
    admin[READINESS] = public[READINESS]
    admin[SHADOW] = public[SHADOW]
    admin[RESILIENCE] = public[RESILIENCE]
    if ADMIN_TOKEN in public:
        admin[ADMIN_TOKEN] = public[ADMIN_TOKEN]
    admin[THROTTLE] = auth_throttle if auth_throttle is not None else AuthThrottle()
    admin[AUTH_FAILURES] = admin[METRICS].admin_auth_failures
    install_observability(admin)
    admin.router.add_get("/metrics", metrics_handler(admin[REGISTRY]))
    admin.router.add_get("/healthz", healthz)
    admin.router.add_get("/readyz", readyz)
    admin.router.add_get("/config", protected(show_config))
    admin.router.add_get("/routes", protected(show_routes))
    admin.router.add_post("/reload", protected(reload))
    admin.router.add_get("/shadow/mismatches", protected(show_mismatches))
    admin.router.add_get("/shadow/noise", protected(show_noise))
    admin.router.add_post("/shadow/noise/reset", protected(reset_noise))
    admin.router.add_post("/routes/{name}/guard/reset", protected(reset_guard))
    return admin


async def healthz(_: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.StreamResponse:
    snapshot = request.app[STORE].current
    reachability = await request.app[READINESS].check(snapshot.table.upstreams)
    body = {
        "status": "ready" if reachability.ok else "not_ready",
        "config_sha256": snapshot.loaded.sha256,
        "upstreams": reachability.upstreams,
    }
    return web.json_response(body, status=200 if reachability.ok else 503)


async def show_config(request: web.Request) -> web.StreamResponse:
    loaded = request.app[STORE].current.loaded
    return web.json_response(
        {
            "sha256": loaded.sha256,
            "loaded_at": loaded.loaded_at,
            "path": str(loaded.path),
            "config": loaded.config.model_dump(mode="json", by_alias=True),
        }
    )


async def show_routes(request: web.Request) -> web.StreamResponse:
    table = request.app[STORE].current.table
    counts = request.app[METRICS].requests_by_role()
    resilience = request.app[RESILIENCE]
    routes = [
        {
            "name": route.name,
            "primary": route.primary,
            "candidate": route.candidate,
            "percent": resilience.effective_percent(route),
            "requests": {role: int(counts.get((route.name, role), 0)) for role in ("primary", "candidate")},
            **guard_state(request, route.name),  # a "guard" entry for routes with a guard block
        }
        for route in table.routes
    ]
    default = {"upstream": table.default_upstream, "requests": int(counts.get(("default", "default"), 0))}
    return web.json_response({"routes": routes, "default": default, "circuits": circuits(request)})


async def reload(request: web.Request) -> web.StreamResponse:
    result = await request.app[STORE].reload("admin")
    if not result.ok:
        return json_error(
            422,
            "invalid_config",
            "the configuration was not reloaded; the last good one keeps serving",
            errors=list(result.errors),
            sha256=result.sha256,
        )
    return web.json_response({"ok": True, "changed": result.changed, "sha256": result.sha256, "errors": []})
