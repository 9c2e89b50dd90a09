"""routes.yaml documents for the scenarios (pure: dicts in, YAML text out; the caller writes files).

The routed table has 50 routes, each with a sticky 50 % rollout and four flags, so a request to the
last route is tested against every route before it: the worst case of a first-match table.
"""

from __future__ import annotations

from typing import Any

import yaml

ROUTE_COUNT = 50
ROUTED_PATH = f"/svc{ROUTE_COUNT - 1}/items"  # matches the last of the 50 routes
UNROUTED_PATH = "/other/items"  # matches none: the default upstream, after all 50 misses


def upstream(url: str, *, timeout_s: float = 30.0) -> dict[str, Any]:
    return {"url": url, "connect_timeout_s": 2, "timeout_s": timeout_s}


def document(
    upstreams: dict[str, str], *, default: str, routes: list[dict[str, Any]], timeout_s: float = 30.0
) -> dict[str, Any]:
    return {
        "version": 1,
        "upstreams": {name: upstream(url, timeout_s=timeout_s) for name, url in upstreams.items()},
        "default_upstream": default,
        "trusted_proxies": [],
        "routes": routes,
    }


def flagged_route(index: int, *, primary: str, candidate: str, percent: float = 50) -> dict[str, Any]:
    return {
        "name": f"r{index}",
        "match": {"path_prefix": f"/svc{index}", "methods": ["GET", "HEAD", "POST"]},
        "primary": primary,
        "candidate": candidate,
        "rollout": {
            "percent": percent,
            "sticky_key": ["header:X-User-Id", "cookie:uid", "client_ip"],
            "on_missing_key": "primary",
        },
        "flags": [
            {"header": "X-Backend", "equals": "new", "use": "candidate"},
            {"cookie": "backend", "equals": "old", "use": "primary"},
            {"header": "X-User-Id", "in": ["alice", "bob"], "use": "candidate"},
            {"query": "backend", "equals": "new", "use": "candidate"},
        ],
    }


def fifty_routes(upstream_url: str) -> dict[str, Any]:
    """Two upstream names on the same server, so either side of each rollout costs the same."""
    routes = [flagged_route(i, primary="a", candidate="b") for i in range(ROUTE_COUNT)]
    return document({"a": upstream_url, "b": upstream_url}, default="a", routes=routes)


def shadowed(primary_url: str, candidate_url: str | None, *, max_in_flight: int = 32) -> dict[str, Any]:
    """Every GET under /api served by the primary and, when candidate_url is given, mirrored at 100 %."""
    route: dict[str, Any] = {
        "name": "api",
        "match": {"path_prefix": "/api"},
        "primary": "primary",
    }
    upstreams = {"primary": primary_url}
    if candidate_url is not None:
        upstreams["candidate"] = candidate_url
        route["candidate"] = "candidate"
        route["rollout"] = {"percent": 0}
        route["shadow"] = {
            "percent": 100,
            "methods": ["GET"],
            "max_in_flight": max_in_flight,
            "timeout_s": 5,
            "compare": {"status": True, "headers": ["content-type"]},
        }
    return document(upstreams, default="primary", routes=[route])


def migration(legacy_url: str, imageservice_url: str, *, percent: float) -> dict[str, Any]:
    route = {
        "name": "images",
        "match": {"path_prefix": "/api/images", "methods": ["GET", "HEAD", "POST"]},
        "primary": "legacy",
        "candidate": "imageservice",
        "rollout": {"percent": percent, "sticky_key": ["header:X-User-Id", "client_ip"]},
    }
    return document(
        {"legacy": legacy_url, "imageservice": imageservice_url}, default="legacy", routes=[route],
        timeout_s=120.0,
    )  # fmt: skip


def dump(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False)
