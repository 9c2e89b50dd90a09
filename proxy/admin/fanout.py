"""The parent's admin listener under `serve --workers N`: the one admin port, for all the workers.

Every endpoint of a worker's admin app (app.py) is here, answered by asking every worker on its private
socket (peers.py) and merging what they said (fanmerge.py; /metrics: fanmetrics.py). A call that changes
something (reload, guard reset, noise reset) goes to every worker and is ok only when every worker says
so; otherwise the answer names each worker's. GET /workers is the parent's own: the supervisor's view.
The bearer token, its throttle and its counter are checked here, in the parent (auth.py), as a worker's
admin app does; the workers are asked with the same token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from urllib.parse import quote

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from proxy.admin import fanmerge
from proxy.admin.auth import AUTH_FAILURES, THROTTLE, AuthThrottle, protected
from proxy.admin.fanmerge import Answer, Body, Disagreement
from proxy.admin.fanmetrics import MetricsFan
from proxy.admin.peers import Peers, Roster
from proxy.admin.shadow import DEFAULT_LIMIT
from proxy.dataplane.keys import ADMIN_TOKEN
from proxy.metrics import WorkersMetrics
from strangler_common.web import REQUEST_ID, Handler, install_observability, json_error

__all__ = ["FAN_RULES", "create_fanout_app"]

PEERS = web.AppKey("peers", Peers)
METRICS_FAN = web.AppKey("metrics_fan", MetricsFan)
Merge = Callable[[Sequence[Body]], Body]

# Each endpoint of admin/app.py, and how the parent answers it (docs/admin.md has the same table).
FAN_RULES = {
    "GET /metrics": "every worker scraped; families merged (metrics/merge.py), replaced workers' counts kept",
    "GET /healthz": "200 when every worker answers its /healthz",
    "GET /readyz": "200 when every worker is ready; an upstream is ok when every worker reaches it",
    "GET /config": "the first worker's, when every worker serves the same sha256; else 409",
    "GET /routes": "counts summed, percent the highest, a guard or circuit as any worker has it; 409 when "
    "the workers' routes differ",
    "POST /reload": "every worker; ok when every worker reloaded, else each worker's answer",
    "GET /shadow/mismatches": "every worker's newest, merged newest first, then the limit",
    "GET /shadow/noise": "every worker's; per path the earliest learned, latest seen, pairs summed, which "
    "workers",
    "POST /shadow/noise/reset": "every worker; forgotten: the most any worker forgot, each under workers",
    "POST /routes/{name}/guard/reset": "every worker; was_tripped when any worker's guard was",
}


def create_fanout_app(
    roster: Roster, metrics: WorkersMetrics, *, admin_token: str | None,
    auth_throttle: AuthThrottle | None = None,
) -> web.Application:  # fmt: skip
    """The parent's admin app. `metrics`: the parent's own families, on the registry it exports too."""
    app = web.Application()
    if admin_token:
        app[ADMIN_TOKEN] = admin_token
    app[THROTTLE] = auth_throttle if auth_throttle is not None else AuthThrottle()
    app[AUTH_FAILURES] = metrics.admin_auth_failures
    peers = app[PEERS] = Peers(roster, token=admin_token)
    app[METRICS_FAN] = MetricsFan(peers, metrics.registry, metrics.scrape_errors)
    install_observability(app)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/workers", protected(_workers))
    app.router.add_get("/config", protected(_every("GET", "/config", fanmerge.config)))
    app.router.add_get("/routes", protected(_every("GET", "/routes", fanmerge.routes)))
    app.router.add_post("/reload", protected(_every("POST", "/reload", fanmerge.reloaded)))
    app.router.add_get("/shadow/mismatches", protected(_mismatches))
    app.router.add_get("/shadow/noise", protected(_every("GET", "/shadow/noise", fanmerge.noise)))
    app.router.add_post(
        "/shadow/noise/reset", protected(_every("POST", "/shadow/noise/reset", fanmerge.noise_reset))
    )
    app.router.add_post("/routes/{name}/guard/reset", protected(_guard_reset))
    app.cleanup_ctx.append(_close_peers)
    return app


@asynccontextmanager
async def _close_peers(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[PEERS].close()


async def _ask(request: web.Request, method: str, path: str) -> list[Answer]:
    peers = request.app[PEERS]
    return await peers.every(method, path, query=request.query, request_id=request.get(REQUEST_ID))


def _answer(answers: list[Answer], merge: Merge, what: str) -> web.Response:
    refused = fanmerge.refusal(answers, what)
    if refused is not None:
        status, body = refused
        return web.json_response(body, status=status)
    try:
        return web.json_response(merge([answer.body for answer in answers]))
    except Disagreement as exc:
        return json_error(409, "workers_disagree", str(exc), workers=exc.workers)


def _every(method: str, path: str, merge: Merge) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return _answer(await _ask(request, method, path), merge, f"{method} {path}")

    return handler


async def _metrics(request: web.Request) -> web.StreamResponse:
    body = await request.app[METRICS_FAN].exposition(request.get(REQUEST_ID))
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _healthz(request: web.Request) -> web.StreamResponse:
    status, body = fanmerge.health(await _ask(request, "GET", "/healthz"))
    return web.json_response(body, status=status)


async def _readyz(request: web.Request) -> web.StreamResponse:
    status, body = fanmerge.readiness(await _ask(request, "GET", "/readyz"))
    return web.json_response(body, status=status)


async def _workers(request: web.Request) -> web.StreamResponse:
    workers = request.app[PEERS].roster.describe()
    return web.json_response({"workers": workers, "restarts": sum(w["restarts"] for w in workers)})


async def _mismatches(request: web.Request) -> web.StreamResponse:
    answers = await _ask(request, "GET", "/shadow/mismatches")
    limit = request.query.get("limit", str(DEFAULT_LIMIT))  # every worker accepted it when all said 200
    return _answer(answers, lambda bodies: fanmerge.mismatches(bodies, int(limit)), "GET /shadow/mismatches")


async def _guard_reset(request: web.Request) -> web.StreamResponse:
    path = f"/routes/{quote(request.match_info['name'], safe='')}/guard/reset"
    return _answer(await _ask(request, "POST", path), fanmerge.guard_reset, "POST /routes/{name}/guard/reset")
