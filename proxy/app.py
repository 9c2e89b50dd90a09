"""The public listener's application: the handler, its resources and their lifetimes.

Owns create_app (the app factory) and the cleanup contexts: one ClientSession per upstream kept in
step with reloads, and the file watcher. The per-request path is handler.py; the admin listener is
admin.py; server.py runs both.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from proxy.config import LoadedConfig
from proxy.handler import ProxyHandler
from proxy.keys import ADMIN_TOKEN, METRICS, READINESS, REGISTRY, RESILIENCE, SESSIONS, SHADOW, STORE
from proxy.metrics import ProxyMetrics
from proxy.reload import ConfigStore, Snapshot, watch
from proxy.resilience import Resilience
from proxy.shadow import Shadower
from proxy.upstreams import ReadinessProbe, UpstreamSessions


def create_app(
    loaded: LoadedConfig,
    *,
    registry: CollectorRegistry | None = None,
    admin_token: str | None = None,
    watch_interval_s: float | None = 0.5,
    access_log: bool = True,
) -> web.Application:
    """The public listener's app. `watch_interval_s=None` turns the file watcher off; `access_log=False`
    drops the per-request log line (metrics still count every request), e.g. for benchmarks."""
    registry = registry if registry is not None else CollectorRegistry()
    metrics = ProxyMetrics(registry)
    store = ConfigStore(loaded, metrics=metrics)
    sessions = UpstreamSessions()
    app = web.Application()
    app[STORE] = store
    app[METRICS] = metrics
    app[REGISTRY] = registry
    app[SESSIONS] = sessions
    app[READINESS] = ReadinessProbe()
    shadower = app[SHADOW] = Shadower(metrics)
    if admin_token:
        app[ADMIN_TOKEN] = admin_token
    resilience = app[RESILIENCE] = Resilience(metrics)
    resilience.follow(loaded.config)
    # Guards and breakers follow every swap; a guard survives a reload that leaves its route unchanged.
    store.subscribe(lambda snapshot: resilience.follow(snapshot.loaded.config))
    handler = ProxyHandler(
        store, metrics, sessions, shadower, access_log=access_log, resilience=resilience
    )
    app.router.add_route("*", "/{tail:.*}", handler.handle)  # one catch-all route: nothing to search
    app.cleanup_ctx.append(_upstream_sessions)
    app.cleanup_ctx.append(_shadow)
    if watch_interval_s is not None:
        app.cleanup_ctx.append(_watcher(watch_interval_s))
    return app


@asynccontextmanager
async def _upstream_sessions(app: web.Application) -> AsyncIterator[None]:
    store, sessions = app[STORE], app[SESSIONS]
    sessions.sync(store.current.table.upstreams)
    unsubscribe = store.subscribe(lambda snapshot: sessions.sync(snapshot.table.upstreams))
    try:
        yield
    finally:
        unsubscribe()
        await sessions.close()


@asynccontextmanager
async def _shadow(app: web.Application) -> AsyncIterator[None]:
    """Shadow copies in flight are cancelled at shutdown; the noise learned for removed routes goes."""
    store, shadower, metrics = app[STORE], app[SHADOW], app[METRICS]

    def swapped(snapshot: Snapshot) -> None:
        shadower.forget_routes_except([route.name for route in snapshot.table.routes])
        metrics.init_shadow(snapshot.table.shadowed)

    metrics.init_shadow(store.current.table.shadowed)
    unsubscribe = store.subscribe(swapped)
    try:
        yield
    finally:
        unsubscribe()
        await shadower.close()


def _watcher(interval_s: float) -> Callable[[web.Application], Any]:
    @asynccontextmanager
    async def watcher(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.get_running_loop().create_task(watch(app[STORE], interval_s=interval_s))
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    return watcher
