"""The console and the progressive controller, over the controller's listener API (a fake speaking its
GET /status and POST /routes/{route}/{action}): the phase on the routes page, the commands sent with
the admin token, a refusal and an unreachable controller said on the page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.integration.proxy.conftest import closed_port, url_of
from tests.integration.proxy.console.conftest import TOKEN, ConsoleFactory

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
STATE: dict[str, Any] = {
    "route": "images", "phase": "paused", "paused_by": "step", "step": 1, "steps": [5, 25, 50, 100],
    "percent": 25, "reason": "waiting for promote",
}  # fmt: skip
REFUSED = {"error": {"code": "refused", "message": "resume images: not paused by an operator"}}


def fake_controller(seen: list[tuple[str, str, str | None]]) -> web.Application:
    async def status(_: web.Request) -> web.StreamResponse:
        return web.json_response({"target": "routes.yaml", "routes": [STATE]})

    async def act(request: web.Request) -> web.StreamResponse:
        route, action = request.match_info["route"], request.match_info["action"]
        seen.append((route, action, request.headers.get("Authorization")))
        if action == "resume":
            return web.json_response(REFUSED, status=409)
        return web.json_response({"action": action, **STATE})

    app = web.Application()
    app.router.add_get("/status", status)
    app.router.add_post("/routes/{route}/{action}", act)
    return app


async def test_the_routes_page_shows_the_controllers_phase_and_sends_its_commands_with_the_token(
    make_console: ConsoleFactory, aiohttp_server: ServerFactory
) -> None:
    seen: list[tuple[str, str, str | None]] = []
    controller = await aiohttp_server(fake_controller(seen))
    console = await make_console(controller_url=url_of(controller))
    csrf = await console.login()

    page = await (await console.admin.get("/console")).text()
    assert "step 1 of 4" in page
    assert "waiting for promote" in page
    assert "the progressive controller writes rollout.percent: phase paused" in page
    for command in ("promote", "pause", "resume", "abort"):
        assert f'name="action" value="{command}"' in page

    form = {"csrf": csrf, "route": "images", "action": "promote", "back": "/console"}
    response = await console.admin.post("/console/actions/controller", data=form, allow_redirects=False)
    assert response.status == 303
    assert seen == [("images", "promote", f"Bearer {TOKEN}")]
    assert "promote images: done" in await (await console.admin.get("/console")).text()

    await console.admin.post("/console/actions/controller", data={**form, "action": "resume"},
                             allow_redirects=False)  # fmt: skip
    said = await (await console.admin.get("/console")).text()
    assert "the controller refused (409): resume images: not paused by an operator" in said

    await console.admin.post("/console/actions/controller", data={**form, "action": "restart-everything"})
    assert len(seen) == 2  # not a console command: never sent


async def test_an_unreachable_controller_is_said_on_the_page(make_console: ConsoleFactory) -> None:
    console = await make_console(controller_url=f"http://127.0.0.1:{closed_port()}")
    await console.login()
    page = await (await console.admin.get("/console")).text()
    assert "unreachable" in page
    assert 'id="percent-images"' in page  # the rest of the page is there
