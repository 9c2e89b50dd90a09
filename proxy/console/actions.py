"""The console's actions, each a POST from a page's form with the session's CSRF token (login.py checks it):
reload the configuration, reset a route's guard, forget a route's learned noise, and the progressive
controller's promote / pause / resume / abort.

Each calls the same AdminApi operation as its JSON endpoint (or the controller's listener), tells the
outcome on the next page (the session's notice) and redirects back (303), so a refresh never repeats it.
Owns the handlers; owns no operation.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from proxy.admin.api import Reply
from proxy.console.login import Form, redirect
from proxy.console.state import CONSOLE, SESSION
from strangler_common.web import REQUEST_ID

__all__ = ["command", "reload", "reset_guard", "reset_noise"]

_log = structlog.get_logger("proxy.console")


def _field(form: Form, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _back(form: Form) -> str:
    """Where the form came from: a console page only (never an address elsewhere)."""
    back = _field(form, "back")
    safe = back.startswith("/console") and back.isprintable() and "//" not in back and "\\" not in back
    return back if safe else "/console"


def _done(request: web.Request, form: Form, said: str) -> web.Response:
    request[SESSION].notice = said
    _log.info("console_action", path=request.path, outcome=said)
    return redirect(_back(form))


def _said(reply: Reply, ok: str) -> str:
    return ok if reply.ok else f"Refused ({reply.status}): {reply.message}"


async def reload(request: web.Request, form: Form) -> web.StreamResponse:
    reply = await request.app[CONSOLE].api.reload(request_id=request.get(REQUEST_ID))
    if reply.ok:
        changed = "a changed configuration" if reply.body.get("changed") else "the same configuration"
        sha = str(reply.body.get("sha256"))[:12]
        return _done(request, form, f"Reloaded: {changed} is serving (sha256 {sha}).")
    errors = "; ".join(str(e) for e in reply.body.get("error", {}).get("errors", [])[:3])
    said = f"Not reloaded, the last good configuration keeps serving: {reply.message} {errors}"
    return _done(request, form, said)


async def reset_guard(request: web.Request, form: Form) -> web.StreamResponse:
    route = _field(form, "route")
    reply = await request.app[CONSOLE].api.reset_guard(route, request_id=request.get(REQUEST_ID))
    was = "it was tripped" if reply.body.get("was_tripped") else "it was not tripped"
    return _done(request, form, _said(reply, f"Guard of {route} reset ({was})."))


async def reset_noise(request: web.Request, form: Form) -> web.StreamResponse:
    route = _field(form, "route")
    reply = await request.app[CONSOLE].api.reset_noise({"route": route}, request_id=request.get(REQUEST_ID))
    forgotten = reply.body.get("forgotten")
    return _done(request, form, _said(reply, f"Noise of {route} forgotten ({forgotten} paths)."))


async def command(request: web.Request, form: Form) -> web.StreamResponse:
    link = request.app[CONSOLE].controller
    _, said = await link.command(_field(form, "route"), _field(form, "action"))
    return _done(request, form, said)
