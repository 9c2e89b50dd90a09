"""Logging in to the console like Jupyter: the admin token once, then a session cookie; and the CSRF check.

Owns: render() (a page with what every page needs), signed_in() (a page handler behind a session: a
`?token=` on any console URL logs in and redirects to the same URL without it, so the token leaves the
address bar and the history; no session: the login form), the login form's handlers, logout, and
csrf_checked() (a POST whose hidden `csrf` field is not the session's is refused with 403 and a page
saying why). The token is judged as the JSON endpoints judge a bearer token (proxy/admin/auth.py): a
wrong one counts in strangler_admin_auth_failures_total and against the peer's throttle, and gets the
login form again, never a console page. The session cookie is HttpOnly, SameSite=Strict, for /console.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp_jinja2
import structlog
from aiohttp import web
from multidict import MultiDictProxy

from proxy.admin.auth import judge
from proxy.console.sessions import TTL_S, same
from proxy.console.state import CONSOLE, SESSION
from strangler_common.web import Handler

__all__ = [
    "COOKIE", "Action", "Form", "csrf_checked", "login_form", "login_post", "logout", "redirect", "render",
    "signed_in",
]  # fmt: skip

COOKIE = "strangler_console"
Form = MultiDictProxy[str | bytes | bytearray | web.FileField]
Action = Callable[[web.Request, Form], Awaitable[web.StreamResponse]]
_log = structlog.get_logger("proxy.console")


def render(
    request: web.Request, template: str, context: dict[str, Any], *, status: int = 200
) -> web.Response:
    """`template` with the context every page has: the session's CSRF token and notice, the mode."""
    console = request.app[CONSOLE]
    session = request.get(SESSION)
    notice, csrf = None, ""
    if session is not None:
        notice, session.notice, csrf = session.notice, None, session.csrf
    common = {"csrf": csrf, "notice": notice, "workers": console.workers, "signed_in": session is not None,
              "refresh_s": console.refresh_s, "path": request.path_qs, "nav": ""}  # fmt: skip
    return aiohttp_jinja2.render_template(template, request, {**common, **context}, status=status)


def _message(request: web.Request, status: int, title: str, text: str) -> web.Response:
    return render(request, "message.html", {"title": title, "text": text}, status=status)


def redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def signed_in(handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        console = request.app[CONSOLE]
        if not console.token:
            return _message(request, 403, "The console is off", "No admin token is configured: set "
                            "STRANGLER_ADMIN_TOKEN (make run generates one).")
        if request.method == "GET" and "token" in request.query:
            query = {k: v for k, v in request.query.items() if k != "token"}
            return _attempt(request, request.query["token"], str(request.rel_url.with_query(query)))
        session = console.sessions.get(request.cookies.get(COOKIE))
        if session is None:
            return redirect("/console/login")
        request[SESSION] = session
        return await handler(request)

    return guarded


def _attempt(request: web.Request, supplied: str, then: str) -> web.Response:
    """Log in with `supplied` and go to `then`, or the login form again saying why not."""
    console = request.app[CONSOLE]
    assert console.token is not None
    refused = judge(request, supplied, console.token, console.throttle, console.failures, sent=bool(supplied))
    if refused is None:
        session = console.sessions.open()
        response = redirect(then)
        response.set_cookie(COOKIE, session.id, httponly=True, samesite="Strict", path="/console",
                            secure=request.secure, max_age=int(TTL_S))  # fmt: skip
        _log.info("console_login", peer=request.remote)
        return response
    if refused.retry_after_s is not None:
        wait = refused.retry_after_s
        response = _message(request, 429, "Too many failed attempts",
                            f"Too many wrong tokens from this address: try again in {wait} s.")
        response.headers["Retry-After"] = str(refused.retry_after_s)
        return response
    error = "That is not the admin token." if refused.reason == "wrong" else "Enter the admin token."
    return render(request, "login.html", {"error": error}, status=401)


async def login_form(request: web.Request) -> web.StreamResponse:
    return render(request, "login.html", {"error": None})


async def login_post(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    if not console.token:
        return await signed_in(login_form)(request)  # says the console is off
    supplied = (await request.post()).get("token")
    return _attempt(request, supplied if isinstance(supplied, str) else "", "/console")


def csrf_checked(action: Action) -> Handler:
    """A POST behind a session whose form carries the session's CSRF token; 403 and a page otherwise."""

    async def checked(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        supplied = form.get("csrf")
        if not same(supplied if isinstance(supplied, str) else None, request[SESSION].csrf):
            _log.warning("console_csrf_refused", peer=request.remote, path=request.path)
            return _message(request, 403, "Refused: no valid CSRF token", "This action did not carry "
                            "this session's CSRF token, so it was not done. Use the buttons of a console "
                            "page (reload it first if it is old).")  # fmt: skip
        return await action(request, form)

    return signed_in(checked)


async def logout(request: web.Request, form: Form) -> web.StreamResponse:
    request.app[CONSOLE].sessions.close(request[SESSION].id)
    response = redirect("/console/login")
    response.del_cookie(COOKIE, path="/console")
    return response
