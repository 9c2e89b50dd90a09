"""The admin listener: /metrics /healthz /readyz, and behind a bearer token the JSON endpoints of api.py
(/config /routes /reload, guard reset, shadow mismatches and noise).

Served on its own port, never on the public one; a worker of `serve --workers N` serves it on a private
unix socket instead, which only the parent's admin listener (fanout.py) asks. It shares the public app's
state (the same config store, metrics and readiness probe), so a reload here is the reload the public
listener serves. The token check, with its count, log and per-peer brake on repeated failures, is auth.py;
the operations are LocalApi's (local.py). The migration console (proxy/console) mounts itself on this app.
"""

from __future__ import annotations

from aiohttp import web

from proxy.admin.api import add_endpoints
from proxy.admin.auth import AUTH_FAILURES, THROTTLE, AuthThrottle, protected
from proxy.admin.families import families_handler
from proxy.admin.local import LocalApi
from proxy.admin.shadow import body_handler
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
from strangler_common.web import install_observability, metrics_handler

__all__ = ["THROTTLE", "create_admin_app", "healthz", "readyz"]


def create_admin_app(
    public: web.Application, *, auth_throttle: AuthThrottle | None = None, private: bool = False
) -> web.Application:
    """The admin app for `public` (made by proxy.app.create_app); the token comes from there.
    `auth_throttle`: the brake on repeated authentication failures (auth.py; a fresh one by default).
    `private`: a worker's, on the socket only its parent reaches; it then also serves the kept bodies of
    mismatches (GET /shadow/samples/{ref}/{side}) to the parent's console, and some of its metric
    families as JSON for the console's figures (GET /metrics/families?name[]=..., families.py): no other
    listener does."""
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
    add_endpoints(admin, LocalApi(public))
    if private:
        admin.router.add_get("/shadow/samples/{ref}/{side}", protected(body_handler(public[SHADOW])))
        admin.router.add_get("/metrics/families", protected(families_handler(admin[REGISTRY])))
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
