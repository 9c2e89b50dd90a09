"""Every typed key of the proxy's application state, in one place.

The public and the admin applications share the same objects under these keys (same store, same
metrics, same sessions); `admin.create_admin_app` copies them from the public app.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry

from proxy.dataplane.handler import ProxyHandler
from proxy.dataplane.upstreams import ReadinessProbe, UpstreamSessions
from proxy.live.reload import ConfigStore
from proxy.metrics import ProxyMetrics
from proxy.resilience.state import Resilience
from proxy.shadow.mirror import Shadower

__all__ = [
    "ADMIN_TOKEN", "HANDLER", "METRICS", "READINESS", "REGISTRY", "RESILIENCE", "SESSIONS", "SHADOW", "STORE",
]  # fmt: skip

STORE = web.AppKey("store", ConfigStore)
METRICS = web.AppKey("metrics", ProxyMetrics)
REGISTRY = web.AppKey("registry", CollectorRegistry)
SESSIONS = web.AppKey("sessions", UpstreamSessions)
READINESS = web.AppKey("readiness", ReadinessProbe)
SHADOW = web.AppKey("shadow", Shadower)  # shadow mode: in-flight copies, noise memory, mismatch store
RESILIENCE = web.AppKey("resilience", Resilience)  # guards per route, circuit breakers per upstream
ADMIN_TOKEN = web.AppKey("admin_token", str)  # absent when no token is configured
HANDLER = web.AppKey("handler", ProxyHandler)  # served by the public listener (dataplane/listener.py)
