"""What the console keeps in its admin app: the AdminApi it reads through, the token and its brake, the
sessions, the traffic history and the link to the controller (Console, under CONSOLE), and the session
of the request being served (SESSION).

Owns no behaviour: app.py builds a Console, login.py and the pages use it.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from prometheus_client import Counter

from proxy.admin.api import AdminApi
from proxy.admin.auth import AuthThrottle
from proxy.console.controller import ControllerLink
from proxy.console.figures import History
from proxy.console.sessions import Session, Sessions

__all__ = ["CONSOLE", "SESSION", "Console"]


@dataclass(slots=True)
class Console:
    api: AdminApi
    token: str | None  # the admin token; None: the console, like the JSON endpoints, is off
    throttle: AuthThrottle  # the admin app's own: a wrong token here counts as one there
    failures: Counter  # strangler_admin_auth_failures_total (or the parent's, under --workers)
    sessions: Sessions
    history: History
    controller: ControllerLink
    workers: bool  # the parent of `serve --workers N`: what it shows is every worker's, merged
    refresh_s: int = 5  # how often the routes page refreshes itself (console.js)


CONSOLE = web.AppKey("console", Console)
SESSION = web.RequestKey("console_session", Session)
