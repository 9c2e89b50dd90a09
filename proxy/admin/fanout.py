"""The parent's admin listener under `serve --workers N`: the one admin port, for all the workers.

Every endpoint of a worker's admin app (app.py) is here, answered by asking every worker on its private
socket (peers.py) and merging what they said (fanmerge.py; /metrics: fanmetrics.py). FanoutApi is the
parent's AdminApi (api.py): the JSON endpoints and the migration console both read through it. A call that
changes something (reload, guard reset, noise reset) goes to every worker and is ok only when every worker
says so; otherwise the answer names each worker's. One mismatch (its ref says whose) and its kept bodies are
asked of that worker alone. GET /workers is the parent's own: the supervisor's view. The bearer token, its
throttle and its counter are checked here, in the parent (auth.py), as a worker's admin app does; the
workers are asked with the same token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from urllib.parse import quote

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric

from proxy.admin import fanmerge
from proxy.admin.api import Reply, Sample, add_endpoints
from proxy.admin.auth import AUTH_FAILURES, THROTTLE, AuthThrottle, protected
from proxy.admin.fanmerge import Answer, Body, Disagreement
from proxy.admin.fanmetrics import MetricsFan
from proxy.admin.peers import Peers, Roster
from proxy.admin.shadow import DEFAULT_LIMIT
from proxy.dataplane.keys import ADMIN_TOKEN
from proxy.metrics import WorkersMetrics
from strangler_common.web import REQUEST_ID, install_observability

__all__ = ["FAN_RULES", "FanoutApi", "create_fanout_app"]

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
    "GET /shadow/mismatches/{ref}": "the worker the ref names (<worker>-<ref>)",
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
    fan = app[METRICS_FAN] = MetricsFan(peers, metrics.registry, metrics.scrape_errors)
    install_observability(app)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/workers", protected(_workers))
    add_endpoints(app, FanoutApi(peers, fan))
    app.cleanup_ctx.append(_close_peers)
    return app


@asynccontextmanager
async def _close_peers(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[PEERS].close()


def _answer(answers: list[Answer], merge: Merge, what: str) -> Reply:
    refused = fanmerge.refusal(answers, what)
    if refused is not None:
        return Reply(*refused)
    try:
        return Reply(200, merge([answer.body for answer in answers]))
    except Disagreement as exc:
        return Reply.error(409, "workers_disagree", str(exc), workers=exc.workers)


class FanoutApi:
    """The parent's AdminApi: each operation asks every worker and merges by its rule (FAN_RULES)."""

    def __init__(self, peers: Peers, fan: MetricsFan) -> None:
        self._peers = peers
        self._fan = fan

    async def _every(
        self, method: str, path: str, merge: Merge, *, query: Mapping[str, str] | None = None,
        request_id: str | None = None, what: str | None = None,
    ) -> Reply:  # fmt: skip
        answers = await self._peers.every(method, path, query=query or {}, request_id=request_id)
        return _answer(answers, merge, what or f"{method} {path}")

    async def config(self, *, request_id: str | None = None) -> Reply:
        return await self._every("GET", "/config", fanmerge.config, request_id=request_id)

    async def routes(self, *, request_id: str | None = None) -> Reply:
        return await self._every("GET", "/routes", fanmerge.routes, request_id=request_id)

    async def reload(self, *, request_id: str | None = None) -> Reply:
        return await self._every("POST", "/reload", fanmerge.reloaded, request_id=request_id)

    async def reset_guard(self, route: str, *, request_id: str | None = None) -> Reply:
        path = f"/routes/{quote(route, safe='')}/guard/reset"
        return await self._every("POST", path, fanmerge.guard_reset, request_id=request_id,
                                 what="POST /routes/{name}/guard/reset")  # fmt: skip

    async def mismatches(self, query: Mapping[str, str], *, request_id: str | None = None) -> Reply:
        limit = query.get("limit", str(DEFAULT_LIMIT))  # every worker accepted it when all said 200
        merge: Merge = lambda bodies: fanmerge.mismatches(bodies, int(limit))  # noqa: E731
        return await self._every("GET", "/shadow/mismatches", merge, query=query, request_id=request_id)

    async def mismatch(self, ref: str, *, request_id: str | None = None) -> Reply:
        worker, local = self._split(ref)
        if worker is None:
            why = f"no kept mismatch {ref!r} (a ref is <worker>-<number>)"
            return Reply.error(404, "unknown_mismatch", why)
        answer = await self._peers.call(worker, "GET", f"/shadow/mismatches/{local}", request_id=request_id)
        refused = fanmerge.refusal([answer], "GET /shadow/mismatches/{ref}")
        if refused is not None:
            return Reply(*refused)
        return Reply(200, {**answer.body, "worker": worker, "ref": ref})

    async def noise(self, query: Mapping[str, str], *, request_id: str | None = None) -> Reply:
        return await self._every("GET", "/shadow/noise", fanmerge.noise, query=query, request_id=request_id)

    async def reset_noise(self, query: Mapping[str, str], *, request_id: str | None = None) -> Reply:
        return await self._every("POST", "/shadow/noise/reset", fanmerge.noise_reset, query=query,
                                 request_id=request_id)  # fmt: skip

    async def sample(self, ref: str, side: str, *, request_id: str | None = None) -> Sample | None:
        worker, local = self._split(ref)
        if worker is None or side not in ("primary", "candidate"):
            return None
        got = await self._peers.raw(worker, f"/shadow/samples/{local}/{side}", request_id=request_id)
        return Sample(got[1], got[2]) if got is not None and got[0] == 200 else None

    async def families(self, names: Collection[str], *, request_id: str | None = None) -> list[Metric]:
        return await self._fan.families(names, request_id)

    def _split(self, ref: str) -> tuple[int | None, str]:
        """`<worker>-<ref>` as (worker, the worker's ref); (None, "") when it names no worker."""
        worker, _, local = ref.partition("-")
        if not (worker.isdigit() and local.isdigit() and int(worker) < len(self._peers.roster.sockets())):
            return None, ""
        return int(worker), local


async def _metrics(request: web.Request) -> web.StreamResponse:
    body = await request.app[METRICS_FAN].exposition(request.get(REQUEST_ID))
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _ask(request: web.Request, method: str, path: str) -> list[Answer]:
    peers = request.app[PEERS]
    return await peers.every(method, path, query=request.query, request_id=request.get(REQUEST_ID))


async def _healthz(request: web.Request) -> web.StreamResponse:
    status, body = fanmerge.health(await _ask(request, "GET", "/healthz"))
    return web.json_response(body, status=status)


async def _readyz(request: web.Request) -> web.StreamResponse:
    status, body = fanmerge.readiness(await _ask(request, "GET", "/readyz"))
    return web.json_response(body, status=status)


async def _workers(request: web.Request) -> web.StreamResponse:
    workers = request.app[PEERS].roster.describe()
    return web.json_response({"workers": workers, "restarts": sum(w["restarts"] for w in workers)})
