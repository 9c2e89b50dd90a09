"""The public listener's application: the handler, its resources and their lifetimes.

Owns create_app (the app factory) and the cleanup contexts: the upstream pools kept in step with
reloads, the shadow mirror, the file watcher, and the access log's last batch, written when the app
stops. The app holds the handler (HANDLER); the public listener (dataplane/listener.py) serves it. The
per-request path is dataplane/handler.py; the admin listener is admin/app.py; server.py runs both.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from proxy.config import LoadedConfig
from proxy.dataplane.bodies import Buffers
from proxy.dataplane.handler import ProxyHandler
from proxy.dataplane.keys import (
    ADMIN_TOKEN,
    HANDLER,
    METRICS,
    READINESS,
    REGISTRY,
    RESILIENCE,
    SESSIONS,
    SHADOW,
    STORE,
)
from proxy.dataplane.upstreams import ReadinessProbe, UpstreamSessions
from proxy.live.reload import ConfigStore, Snapshot
from proxy.live.watch import first_look, watch
from proxy.metrics import ProxyMetrics
from proxy.resilience.state import Resilience
from proxy.shadow.mirror import Shadower

__all__ = ["create_app"]

_log = structlog.get_logger("proxy.app")


def create_app(
    loaded: LoadedConfig,
    *,
    registry: CollectorRegistry | None = None,
    admin_token: str | None = None,
    watch_interval_s: float | None = 0.5,
    watch_settle_s: float = 2.0,
    access_log: bool = True,
    shadow_key: bytes | None = None,
) -> web.Application:
    """The public listener's app. `watch_interval_s=None` turns the file watcher off; an edit it sees
    goes live once unchanged for `watch_settle_s` (at once when renamed into place: live/watch.py);
    `access_log=False` drops the per-request log line (metrics still count every request), e.g. for
    benchmarks.
    `shadow_key` signs the marker on shadow copies; without it the copies go unmarked, and the
    candidate stores them like any request (said once at start-up and after a reload that adds shadowing)."""
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
    limits = loaded.config.limits
    buffers = Buffers(limits, metrics=metrics)
    store.subscribe(lambda snapshot: buffers.follow(snapshot.table.limits))
    shadower = app[SHADOW] = Shadower(metrics, key=shadow_key, memory=buffers.memory)
    if admin_token:
        app[ADMIN_TOKEN] = admin_token
    resilience = app[RESILIENCE] = Resilience(metrics)
    resilience.follow(loaded.config)
    metrics.rollout_from(lambda: resilience.effective_percents(store.current.table))
    # Guards and breakers follow every swap; a guard survives a reload that leaves its route unchanged.
    store.subscribe(lambda snapshot: resilience.follow(snapshot.loaded.config))
    # Served by the public listener's http1 server (dataplane/listener.py), not by aiohttp's router: the
    # app is the container of the resources and their lifetimes.
    app[HANDLER] = ProxyHandler(
        store, metrics, sessions, shadower, access_log=access_log, resilience=resilience, buffers=buffers
    )
    app.cleanup_ctx.append(_access_log)  # first in, last out: after every other cleanup
    app.cleanup_ctx.append(_upstream_sessions)
    app.cleanup_ctx.append(_shadow)
    if watch_interval_s is not None:
        app.cleanup_ctx.append(_watcher(watch_interval_s, watch_settle_s))
    return app


@asynccontextmanager
async def _access_log(app: web.Application) -> AsyncIterator[None]:
    """The access log writes in batches (strangler_common.logs.DirectLog): its last one is written when
    the app stops, which is after the public listener drained (its lines included)."""
    try:
        yield
    finally:
        app[HANDLER].access.flush()


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
    """Shadow copies in flight are cancelled at shutdown; noise learned under a comparison that a reload
    changed (or for a route no longer shadowed) goes. Without a signing key, say once that the
    candidate will store the copies."""
    store, shadower, metrics = app[STORE], app[SHADOW], app[METRICS]
    warned = False

    def follow(snapshot: Snapshot) -> None:
        nonlocal warned
        table = snapshot.table
        dropped = shadower.follow(table)
        if dropped:
            _log.info("shadow_noise_dropped", routes=dropped, reason="compare or noise_baseline changed")
        metrics.init_shadow(table.shadowed)
        if table.shadowed and shadower.key is None and not warned:
            warned = True
            _log.warning(
                "shadow_copies_unsigned", routes=sorted(table.shadowed),
                detail="no STRANGLER_SHADOW_KEY: shadow copies are sent unmarked, so the candidate stores "
                "them and claims their Idempotency-Keys like any request; give the proxy and the services "
                "the same key to mark them",
            )  # fmt: skip

    follow(store.current)
    unsubscribe = store.subscribe(follow)
    try:
        yield
    finally:
        unsubscribe()
        await shadower.close()


def _watcher(interval_s: float, settle_s: float) -> Callable[[web.Application], Any]:
    @asynccontextmanager
    async def watcher(app: web.Application) -> AsyncIterator[None]:
        store = app[STORE]
        first = await first_look(store.path)  # before serving: a rename from now on is seen as one
        polling = watch(store, interval_s=interval_s, settle_s=settle_s, metrics=app[METRICS], first=first)
        task = asyncio.get_running_loop().create_task(polling)
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    return watcher
