"""The controller's listener, and the app that runs the controller's loop beside it.

Owns: create_controller_app() (the loop started and stopped with the app: Prometheus's session opened,
the saved states loaded, the loop's task, all in cleanup_ctx), GET /status (every route: phase, step,
percent, the last verdict with its checks, reason, updated_at), GET /metrics, GET /healthz, and behind the
bearer token the operators' commands POST /routes/{route}/{promote|pause|resume|abort|restart} (an
optional JSON body {"reason": "..."}), which take effect at once (commands.py).

The token is the admin listener's (STRANGLER_ADMIN_TOKEN or STRANGLER_ADMIN_TOKEN_FILE, read by the CLI),
checked the same way with the same brake on a peer that keeps failing it (proxy.admin.auth), counted in
strangler_rollout_auth_failures_total. Errors are JSON, {"error": {"code", "message"}}: 400 (a body that
is not the JSON object it should be), 401 (no or a wrong token), 403 (no token configured: commands are
off; status and metrics stay readable), 404 (no rollout of that name), 409 (the move does not apply in
this phase: state.Refused and its reason; or the controller did not write: an invalid routes file, an
operator's edit under it), 429 (a peer throttled), 503 (the routes file or the state cannot be read or
written).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web

from proxy.admin.auth import AuthThrottle, check
from proxy.controller.commands import ACTIONS, Action, UnknownRoute, command
from proxy.controller.events import state_dict, verdict_dict
from proxy.controller.loop import Controller
from proxy.controller.metrics import ControllerMetrics
from proxy.controller.rollouts import Entry, NotWritten
from proxy.rollout.state import Refused
from strangler_common.web import Handler, install_observability, json_error, metrics_handler

__all__ = ["CONTROLLER", "create_controller_app", "status"]


@dataclass(frozen=True, slots=True)
class Gate:
    token: str | None
    throttle: AuthThrottle
    metrics: ControllerMetrics


CONTROLLER = web.AppKey("rollout_controller", Controller)
GATE = web.AppKey("rollout_gate", Gate)
_UNWRITTEN_STATUS = {"write_refused": 409, "conflict": 409, "write_failed": 503, "state_failed": 503}


def create_controller_app(controller: Controller, *, token: str | None) -> web.Application:
    """The listener of `controller`; the loop runs while the app does. `token`: None turns commands off."""
    app = web.Application()
    app[CONTROLLER] = controller
    app[GATE] = Gate(token, AuthThrottle(), controller.metrics)
    install_observability(app)
    app.cleanup_ctx.append(_running)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/status", show_status)
    app.router.add_get("/metrics", metrics_handler(controller.metrics.registry))
    actions = "|".join(ACTIONS)
    app.router.add_post(f"/routes/{{route}}/{{action:{actions}}}", _protected(act))
    return app


@contextlib.asynccontextmanager
async def _running(app: web.Application) -> AsyncIterator[None]:
    controller = app[CONTROLLER]
    await controller.prometheus.open()
    try:
        await controller.start()  # ControllerError stops the app before it listens
        task = asyncio.create_task(controller.run(), name="rollout-controller")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        await controller.prometheus.close()


async def healthz(_: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "ok"})


async def show_status(request: web.Request) -> web.StreamResponse:
    return web.json_response(status(request.app[CONTROLLER]))


def status(controller: Controller) -> dict[str, Any]:
    """What GET /status answers: the target, Prometheus, and every route's rollout by name."""
    rollouts = controller.rollouts
    return {
        "target": rollouts.target.description,
        "prometheus": {"url": controller.prometheus.url, "reachable": controller.outage_since is None},
        "routes": [route_status(name, entry, controller) for name, entry in sorted(rollouts.entries.items())],
    }


def route_status(name: str, entry: Entry, controller: Controller) -> dict[str, Any]:
    running = entry.state.phase == "progressing" or entry.state.paused_by == "step"
    due = max(0.0, round(entry.due - controller.rollouts.monotonic(), 1))
    last = None
    if entry.verdict is not None:
        last = {"at": entry.analysed_at, **verdict_dict(entry.verdict)}
    return {
        "route": name,
        **state_dict(entry.state),
        "interval_s": entry.policy.interval_s,
        "next_analysis_in_s": due if running else None,
        "last_analysis": last,
    }


def _protected(handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        gate = request.app[GATE]
        if not gate.token:
            return json_error(403, "commands_disabled", "no token is configured: set STRANGLER_ADMIN_TOKEN "
                              "(or STRANGLER_ADMIN_TOKEN_FILE) where the controller runs to use commands")
        refused = check(request, gate.token, gate.throttle, gate.metrics.auth_failures)
        return refused if refused is not None else await handler(request)

    return guarded


async def act(request: web.Request) -> web.StreamResponse:
    controller = request.app[CONTROLLER]
    route, action = request.match_info["route"], cast(Action, request.match_info["action"])
    reason = await _reason(request)
    if not isinstance(reason, str):
        return reason
    try:
        entry = await command(controller.rollouts, route, action, reason=reason)
    except UnknownRoute:
        known = ", ".join(sorted(controller.rollouts.entries)) or "none"
        return json_error(404, "unknown_route", f"no rollout named {route!r} (routes with a progressive "
                          f"block: {known})")  # fmt: skip
    except Refused as exc:
        return json_error(409, "refused", f"{action} {route}: {exc}")
    except NotWritten as exc:
        return json_error(_UNWRITTEN_STATUS.get(exc.code, 409), exc.code, f"{action} {route}: {exc}")
    except (OSError, UnicodeDecodeError) as exc:
        where = controller.rollouts.target.description
        return json_error(503, "target_unavailable", f"{action} {route}: cannot read {where}: {exc}")
    return web.json_response({"action": action, **route_status(route, entry, controller)})


async def _reason(request: web.Request) -> str | web.StreamResponse:
    """The optional {"reason": "..."} of a command's body; "" without a body."""
    raw = await request.read()
    if not raw.strip():
        return ""
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("reason", ""), str) or set(body) - {"reason"}:
        return json_error(400, "bad_request", 'the body, when there is one, is {"reason": "<text>"}')
    return str(body.get("reason", ""))
