"""The console under `serve --workers N`, in process: two real worker apps on private unix sockets, the
parent's fan-out admin app in front with the console mounted on it, reading through the same AdminApi."""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from proxy.admin.app import create_admin_app
from proxy.admin.fanout import create_fanout_app
from proxy.app import create_app
from proxy.config import load_config
from proxy.console.app import mount_console
from proxy.dataplane.keys import SHADOW
from proxy.metrics import WorkersMetrics
from tests.contract.implementations import SHADOW_KEY
from tests.integration.proxy.admin.test_fanout import Roster
from tests.integration.proxy.conftest import write_config
from tests.integration.proxy.console.conftest import TOKEN, console_doc
from tests.integration.proxy.listener_server import ListenerTestServer
from tests.integration.proxy.shadow_fakes import Service, service_app

Client = TestClient[web.Request, web.Application]
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def fleet(
    tmp_path: Path, aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
    aiohttp_client: Callable[..., Awaitable[Client]],
) -> AsyncIterator[tuple[list[Client], list[web.Application], Client, Service]]:  # fmt: skip
    legacy, new = Service("legacy"), Service("new")
    legacy.image_size, new.image_size = (8, 8), (24, 16)
    doc = console_doc(await aiohttp_server(service_app(legacy)), await aiohttp_server(service_app(new)))
    config = write_config(tmp_path / "routes.yaml", doc)
    private = tempfile.mkdtemp(prefix="con-")  # short: a unix socket path holds 107 bytes
    runners, publics, apps = [], [], []
    for index in range(2):
        app = create_app(load_config(config), registry=CollectorRegistry(), admin_token=TOKEN,
                         watch_interval_s=None, shadow_key=SHADOW_KEY)  # fmt: skip
        publics.append(await aiohttp_client(ListenerTestServer(app)))
        apps.append(app)
        runner = web.AppRunner(create_admin_app(app, private=True))
        await runner.setup()
        await web.UnixSite(runner, f"{private}/worker-{index}.sock").start()
        runners.append(runner)
    roster = Roster([f"{private}/worker-{i}.sock" for i in range(2)], [1, 1])
    parent = create_fanout_app(roster, WorkersMetrics(CollectorRegistry()), admin_token=TOKEN)
    mount_console(parent, workers=True)
    yield publics, apps, await aiohttp_client(parent), new
    for runner in runners:
        await runner.cleanup()
    shutil.rmtree(private, ignore_errors=True)


async def _settle(app: web.Application) -> None:
    """Wait (bounded) until the worker kept a mismatch."""
    for _ in range(100):
        if app[SHADOW].store.routes():
            return
        tasks = list(app[SHADOW].tasks)
        await (asyncio.wait(tasks, timeout=5.0) if tasks else asyncio.sleep(0.02))
    raise AssertionError("no mismatch was kept")


async def test_the_parents_console_shows_a_workers_image_mismatch_and_its_pictures(
    fleet: tuple[list[Client], list[web.Application], Client, Service],
) -> None:
    publics, apps, parent, _ = fleet
    await publics[1].get("/api/image")
    await _settle(apps[1])
    assert (await parent.get(f"/console?token={TOKEN}")).status == 200

    listing = await (await parent.get("/console/mismatches")).text()
    (ref,) = re.findall(r'href="/console/mismatches/([0-9]+-[0-9]+)"', listing)
    assert ref.startswith("1-")  # worker 1 kept it

    page = await (await parent.get(f"/console/mismatches/{ref}")).text()
    assert re.search(r'id="facts-primary">PNG 8×8', page)
    assert re.search(r'id="facts-candidate">PNG 24×16', page)
    assert "worker 1" in page
    picture = await parent.get(f"/console/mismatches/{ref}/candidate")
    assert (picture.status, picture.content_type) == (200, "image/png")
    # the parent's JSON API names the worker; it serves no body, nor does it route to a worker's
    detail = await (await parent.get(f"/shadow/mismatches/{ref}", headers=AUTH)).json()
    assert (detail["worker"], detail["ref"]) == (1, ref)
    assert (await parent.get(f"/shadow/samples/{ref}/candidate", headers=AUTH)).status == 404


async def test_the_parents_routes_page_sums_every_worker_and_says_whose_view_it_is(
    fleet: tuple[list[Client], list[web.Application], Client, Service],
) -> None:
    publics, _, parent, _ = fleet
    for public in publics:
        for _ in range(2):
            await public.get("/api/nonce")
    await parent.get(f"/console?token={TOKEN}")

    page = await (await parent.get("/console")).text()
    assert re.search(r'<tr class="side-primary"><th>primary</th><td>4</td>', page)
    assert "its parent's merge of every worker" in page


async def test_an_unknown_ref_is_a_404_page(
    fleet: tuple[list[Client], list[web.Application], Client, Service],
) -> None:
    _, _, parent, _ = fleet
    await parent.get(f"/console?token={TOKEN}")
    for ref in ("7-1", "x", "0-999"):
        response = await parent.get(f"/console/mismatches/{ref}")
        assert response.status == 404, ref
    assert (await parent.get("/shadow/mismatches/9-1", headers=AUTH)).status == 404

