"""A proxy with the migration console on its admin listener, in process: fake primary and candidate
services that tests can bend (shadow_fakes.Service), and a logged-in client for the console's pages."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from proxy.admin.app import create_admin_app
from proxy.app import create_app
from proxy.config import load_config
from proxy.console.app import mount_console
from proxy.dataplane.keys import SHADOW
from tests.contract.implementations import SHADOW_KEY
from tests.integration.proxy.conftest import config_dict, url_of, write_config
from tests.integration.proxy.listener_server import ListenerTestServer
from tests.integration.proxy.shadow_fakes import Service, service_app, shadow_route

TOKEN = "s3cret"
Client = TestClient[web.Request, web.Application]


@dataclass
class Console:
    """The proxy's public client, the admin listener's client (the console is on it), its state."""

    public: Client
    admin: Client
    app: web.Application
    registry: CollectorRegistry
    config: Path
    legacy: Service
    new: Service

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    async def settle(self) -> None:
        """Wait (bounded) until every shadow copy has been compared and kept: a copy starts once the
        client has its answer, so look again after a moment before saying none is running."""
        idle = 0
        while idle < 3:
            tasks = list(self.app[SHADOW].tasks)
            if tasks:
                idle = 0
                await asyncio.wait(tasks, timeout=5.0)
            else:
                idle += 1
                await asyncio.sleep(0.01)

    async def login(self) -> str:
        """Log in by the token URL; the session's CSRF token, as the routes page's forms carry it."""
        response = await self.admin.get(f"/console?token={TOKEN}", allow_redirects=True)
        assert response.status == 200
        return csrf_of(await response.text())


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF field on the page"
    return found.group(1)


def console_doc(legacy: TestServer, new: TestServer, **shadow: Any) -> dict[str, Any]:
    """Everything under /api served by legacy (0 %), mirrored to new and compared."""
    compare = {"headers": ["content-type"], "ignore": ["id", "created"], **shadow.pop("compare", {})}
    route = shadow_route({"compare": compare, **shadow}, guard={"max_error_rate": 0.5, "min_requests": 5,
                                                                "window_s": 60})  # fmt: skip
    route["rollout"]["sticky_key"] = ["cookie:uid", "client_ip"]
    return config_dict({"legacy": url_of(legacy), "new": url_of(new)}, routes=[route])


ConsoleFactory = Callable[..., Awaitable[Console]]


@pytest.fixture
def make_console(
    tmp_path: Path,
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
    aiohttp_client: Callable[..., Awaitable[Client]],
) -> ConsoleFactory:
    async def make(
        *, admin_token: str | None = TOKEN, refresh_s: int = 5, controller_url: str | None = None,
        **shadow: Any,
    ) -> Console:
        legacy, new = Service("legacy"), Service("new")
        legacy_server = await aiohttp_server(service_app(legacy))
        new_server = await aiohttp_server(service_app(new))
        path = write_config(tmp_path / "routes.yaml", console_doc(legacy_server, new_server, **shadow))
        registry = CollectorRegistry()
        app = create_app(load_config(path), registry=registry, admin_token=admin_token, watch_interval_s=None,
                         shadow_key=SHADOW_KEY)  # fmt: skip
        admin = create_admin_app(app)
        mount_console(admin, refresh_s=refresh_s, controller_url=controller_url)
        public = await aiohttp_client(ListenerTestServer(app))
        return Console(public, await aiohttp_client(admin), app, registry, path, legacy, new)

    return make
