"""The admin listener's operations as one interface, AdminApi, whoever answers them: a single process from
its own state (local.py) or the parent of `serve --workers N` by asking every worker (fanout.py).

Owns: Reply, Sample, the AdminApi protocol, ADMIN_API (the app key each admin app keeps its AdminApi under)
and ENDPOINTS, the JSON endpoints both admin apps serve from it behind the bearer token (add_endpoints).
The migration console (proxy/console) reads through the same AdminApi in-process, so a page shows what
the JSON endpoints answer, in either mode. Owns no state and no merge rule.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web
from prometheus_client.metrics_core import Metric

from proxy.admin.auth import protected
from strangler_common.web import REQUEST_ID, Handler, error_body

__all__ = ["ADMIN_API", "ENDPOINTS", "AdminApi", "Body", "Reply", "Sample", "add_endpoints", "endpoint"]

Body = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Reply:
    """One endpoint's answer: its status and its JSON body (the error shape when it is not 200)."""

    status: int
    body: Body

    @property
    def ok(self) -> bool:
        return self.status == 200

    @classmethod
    def error(cls, status: int, code: str, message: str, **extra: Any) -> Reply:
        return cls(status, error_body(code, message, **extra))

    @property
    def message(self) -> str:
        """The error's message ("" for a success), for a page to show."""
        error = self.body.get("error") if isinstance(self.body, dict) else None
        return str(error.get("message", "")) if isinstance(error, dict) else ""


@dataclass(frozen=True, slots=True)
class Sample:
    """A kept body of a mismatch (the console shows it; no JSON endpoint serves it)."""

    media_type: str
    data: bytes


class AdminApi(Protocol):
    """Each method is one admin endpoint; `request_id` goes into the logs of whoever answers it."""

    async def config(self, *, request_id: str | None = None) -> Reply: ...

    async def routes(self, *, request_id: str | None = None) -> Reply: ...

    async def reload(self, *, request_id: str | None = None) -> Reply: ...

    async def reset_guard(self, route: str, *, request_id: str | None = None) -> Reply: ...

    async def mismatches(self, query: Mapping[str, str], *, request_id: str | None = None) -> Reply: ...

    async def mismatch(self, ref: str, *, request_id: str | None = None) -> Reply:
        """One kept mismatch by the `ref` its listing gave, with `bodies`: what each side's kept body is."""
        ...

    async def noise(self, query: Mapping[str, str], *, request_id: str | None = None) -> Reply: ...

    async def reset_noise(self, query: Mapping[str, str], *, request_id: str | None = None) -> Reply: ...

    async def sample(self, ref: str, side: str, *, request_id: str | None = None) -> Sample | None:
        """The whole body `side` ("primary" | "candidate") of mismatch `ref`, when it was kept."""
        ...

    async def families(self, names: Collection[str], *, request_id: str | None = None) -> list[Metric]:
        """What GET /metrics exports of the samples called `names` (strangler_requests_total, not
        strangler_requests), as metric families rather than text: the console's figures read these."""
        ...


ADMIN_API: web.AppKey[AdminApi] = web.AppKey("admin_api")
Operation = Callable[[AdminApi, web.Request, str | None], Awaitable[Reply]]

# The JSON endpoints behind the token, each an AdminApi call (docs/admin.md lists them).
ENDPOINTS: tuple[tuple[str, str, Operation], ...] = (
    ("GET", "/config", lambda api, r, rid: api.config(request_id=rid)),
    ("GET", "/routes", lambda api, r, rid: api.routes(request_id=rid)),
    ("POST", "/reload", lambda api, r, rid: api.reload(request_id=rid)),
    ("GET", "/shadow/mismatches", lambda api, r, rid: api.mismatches(r.query, request_id=rid)),
    ("GET", "/shadow/mismatches/{ref}",
     lambda api, r, rid: api.mismatch(r.match_info["ref"], request_id=rid)),
    ("GET", "/shadow/noise", lambda api, r, rid: api.noise(r.query, request_id=rid)),
    ("POST", "/shadow/noise/reset", lambda api, r, rid: api.reset_noise(r.query, request_id=rid)),
    ("POST", "/routes/{name}/guard/reset",
     lambda api, r, rid: api.reset_guard(r.match_info["name"], request_id=rid)),
)  # fmt: skip


def endpoint(operation: Operation) -> Handler:
    """A JSON handler that answers with what `operation` replies."""

    async def handler(request: web.Request) -> web.StreamResponse:
        reply = await operation(request.app[ADMIN_API], request, request.get(REQUEST_ID))
        return web.json_response(reply.body, status=reply.status)

    return handler


def add_endpoints(app: web.Application, api: AdminApi) -> None:
    """`api` under ADMIN_API, and every endpoint of ENDPOINTS behind the app's bearer token (auth.py)."""
    app[ADMIN_API] = api
    for method, path, operation in ENDPOINTS:
        app.router.add_route(method, path, protected(endpoint(operation)))
