"""mount_console(): the migration console on an admin app, a single process's (admin/app.py) or the parent's
under `serve --workers N` (admin/fanout.py); it reads through that app's AdminApi either way.

  GET  /console                     Routes (also: /console?token=... logs in, then redirects to /console)
  GET  /console/mismatches          the kept mismatches (?route=&kind=); /console/mismatches/{ref}: one
  GET  /console/noise               the learned noise
  GET  /console/login, POST /console/login, POST /console/logout
  POST /console/actions/{reload,guard-reset,noise-reset,controller}   each with the session's CSRF token
  GET  /console/static/...          the style sheet and the script: nothing is loaded from elsewhere

Owns the wiring: templates (Jinja2, autoescaped), the security headers of every console answer (a strict
Content-Security-Policy: scripts, styles and images from this listener only, no inline script), and the
traffic sampler that keeps the figures of the last minutes (figures.History) while the app runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
import structlog
from aiohttp import web

from proxy.admin.api import ADMIN_API
from proxy.admin.auth import AUTH_FAILURES, THROTTLE
from proxy.console import actions, figures, login, mismatchpages, pages
from proxy.console.controller import ControllerLink
from proxy.console.sessions import Sessions
from proxy.console.state import CONSOLE, Console
from proxy.dataplane.keys import ADMIN_TOKEN

__all__ = ["CSP", "SAMPLE_EVERY_S", "mount_console"]

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")  # fmt: skip
SAMPLE_EVERY_S = 10.0
_HERE = Path(__file__).parent
_log = structlog.get_logger("proxy.console")


def mount_console(
    admin: web.Application, *, controller_url: str | None = None, workers: bool = False,
    refresh_s: int = 5,
) -> None:  # fmt: skip
    """Add the console's routes to `admin` (its AdminApi, token, throttle and failure counter are used).
    `controller_url`: the progressive controller's listener (STRANGLER_CONTROLLER_URL), or None."""
    token = admin.get(ADMIN_TOKEN)
    admin[CONSOLE] = Console(
        api=admin[ADMIN_API], token=token, throttle=admin[THROTTLE], failures=admin[AUTH_FAILURES],
        sessions=Sessions(), history=figures.History(), controller=ControllerLink(controller_url, token),
        workers=workers, refresh_s=refresh_s,
    )  # fmt: skip
    env = aiohttp_jinja2.setup(admin, loader=jinja2.FileSystemLoader(_HERE / "templates"), autoescape=True,
                               undefined=jinja2.StrictUndefined)  # fmt: skip
    env.filters.update(percent=_percent, seconds=_seconds, ago=_ago)
    admin.on_response_prepare.append(_security_headers)
    add = admin.router
    add.add_get("/console", login.signed_in(pages.routes_page))
    add.add_get("/console/mismatches", login.signed_in(mismatchpages.mismatches_page))
    add.add_get("/console/mismatches/{ref}", login.signed_in(mismatchpages.mismatch_page))
    add.add_get("/console/mismatches/{ref}/{side:primary|candidate}", login.signed_in(mismatchpages.body))
    add.add_get("/console/noise", login.signed_in(pages.noise_page))
    add.add_get("/console/login", login.login_form)
    add.add_post("/console/login", login.login_post)
    add.add_post("/console/logout", login.csrf_checked(login.logout))
    add.add_post("/console/actions/reload", login.csrf_checked(actions.reload))
    add.add_post("/console/actions/guard-reset", login.csrf_checked(actions.reset_guard))
    add.add_post("/console/actions/noise-reset", login.csrf_checked(actions.reset_noise))
    add.add_post("/console/actions/controller", login.csrf_checked(actions.command))
    add.add_static("/console/static", _HERE / "static", name="console-static", append_version=True)
    admin.cleanup_ctx.append(_sampling)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    if not request.path.startswith("/console"):
        return
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")  # a token URL is never sent on
    response.headers.setdefault("X-Frame-Options", "DENY")
    if not request.path.startswith("/console/static/"):
        response.headers.setdefault("Cache-Control", "no-store")


@contextlib.asynccontextmanager
async def _sampling(app: web.Application) -> AsyncIterator[None]:
    """Read the figures every SAMPLE_EVERY_S into the history, while the app runs."""
    console = app[CONSOLE]
    task = asyncio.create_task(_sample(console), name="console-sampler")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await console.controller.close()


async def _sample(console: Console) -> None:
    while True:
        # First wait: under --workers the parent's app starts before its workers listen.
        await asyncio.sleep(SAMPLE_EVERY_S)
        try:
            families = await console.api.families(figures.NAMES)
            console.history.add(time.monotonic(), figures.tally(families))
        except Exception:  # never the end of the sampling: the next reading will do
            _log.exception("console_sample_failed")


def _percent(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f} %"


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _ago(at: float) -> str:
    left = max(0.0, time.time() - at)
    if left < 60:
        return f"{left:.0f} s ago"
    return f"{left / 60:.0f} min ago" if left < 3600 else f"{left / 3600:.1f} h ago"
