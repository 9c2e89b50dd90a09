"""The console's Routes and Noise pages (the Mismatches pages are mismatchpages.py).

Routes: per route its two sides, the effective percent and why, the flags, requests per side over the
last minutes with their error share and p50/p95, the guard's window, the breakers, the shadow outcomes
and match rate, and the controller's phase with its commands when one is configured. Noise: what each
shadowed route learned, with a reset. Each page reads through the AdminApi (proxy/admin/api.py) in-process
and says whose memory it shows. Owns the handlers; the facts are overview.py's and figures.py's.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from proxy.console import figures
from proxy.console.controller import COMMANDS
from proxy.console.login import render
from proxy.console.overview import route_views
from proxy.console.state import CONSOLE
from strangler_common.web import REQUEST_ID

__all__ = ["noise_page", "routes_page"]


async def routes_page(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    api, rid = console.api, request.get(REQUEST_ID)
    routes, config, families, controller, kept = await asyncio.gather(
        api.routes(request_id=rid), api.config(request_id=rid), api.families(figures.NAMES, request_id=rid),
        console.controller.status(), api.mismatches({"limit": "1"}, request_id=rid),
    )  # fmt: skip
    if not routes.ok:
        return render(request, "message.html", {"title": "Routes", "text": routes.message}, status=502)
    span, traffic = console.history.window(time.monotonic(), figures.tally(families))
    views = route_views(routes.body, config.body if config.ok else None, traffic, controller.routes,
                        kept.body.get("kept", {}) if kept.ok else {})  # fmt: skip
    context: dict[str, Any] = {
        "nav": "routes", "routes": views, "default": routes.body.get("default", {}),
        "circuits": routes.body.get("circuits", {}), "span_s": span, "config_error": config.message,
        "sha256": (config.body.get("sha256") or "")[:12] if config.ok else "", "controller": controller,
        "commands": COMMANDS,
    }  # fmt: skip
    return render(request, "routes.html", context)


async def noise_page(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    rid = request.get(REQUEST_ID)
    noise, config = await asyncio.gather(
        console.api.noise({}, request_id=rid), console.api.config(request_id=rid)
    )
    if not noise.ok:
        return render(request, "message.html", {"title": "Noise", "text": noise.message}, status=502)
    learned = noise.body.get("noise", {})
    shadowed = {}
    for route in (config.body.get("config", {}).get("routes", []) if config.ok else []):
        shadow = route.get("shadow") or {}
        if shadow.get("percent"):
            shadowed[route["name"]] = (shadow.get("noise_baseline") or {}).get("percent", 0)
    names = sorted(set(shadowed) | set(learned))
    rows = [{"route": name, "baseline": shadowed.get(name), **learned.get(name, {"pairs": 0, "paths": []})}
            for name in names]  # fmt: skip
    return render(request, "noise.html", {"nav": "noise", "routes": rows})
