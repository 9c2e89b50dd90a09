"""The controller's listener: status, metrics, health, and operators' commands with their errors."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from structlog.testing import capture_logs

from proxy.controller.listener import CONTROLLER, create_controller_app
from tests.unit.proxy.controller.rig import HEALTHY, Rig

TOKEN = "controller-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def client_for(rig: Rig, aiohttp_client: Any, *, token: str | None = TOKEN) -> TestClient:
    controller = rig.controller()
    return await aiohttp_client(create_controller_app(controller, token=token))  # type: ignore[no-any-return]


async def test_status_shows_every_route_with_its_phase_step_percent_and_reason(
    rig: Rig, aiohttp_client: Any
) -> None:
    client = await client_for(rig, aiohttp_client)

    response = await client.get("/status")

    assert response.status == 200
    body = await response.json()
    assert body["target"] == f"file:{rig.path}"
    assert body["prometheus"]["reachable"] is True
    (route,) = body["routes"]
    assert route["route"] == "images"
    assert (route["phase"], route["step"], route["percent"]) == ("progressing", 0, 10)
    assert route["steps"] == [10, 50, 100]
    assert route["reason"] == "started at the first step"
    assert route["last_analysis"] is None
    assert route["next_analysis_in_s"] == 30
    assert isinstance(route["updated_at"], float)


async def test_the_last_verdict_is_in_the_status_with_its_checks(rig: Rig, aiohttp_client: Any) -> None:
    client = await client_for(rig, aiohttp_client)
    rig.next_interval(HEALTHY)
    await client.app[CONTROLLER].analyse("images")

    (route,) = (await (await client.get("/status")).json())["routes"]
    last = route["last_analysis"]
    assert last["result"] == "passed"
    assert last["at"] == rig.clock.now
    assert last["checks"][0]["name"] == "error_rate"
    assert route["percent"] == 50


async def test_metrics_show_the_step_the_phase_and_the_analyses(rig: Rig, aiohttp_client: Any) -> None:
    client = await client_for(rig, aiohttp_client)

    text = await (await client.get("/metrics")).text()

    assert 'strangler_rollout_step{route="images"} 0.0' in text
    assert 'strangler_rollout_percent_target{route="images"} 10.0' in text
    assert 'strangler_rollout_phase{phase="progressing",route="images"} 1.0' in text
    assert 'strangler_rollout_phase{phase="aborted",route="images"} 0.0' in text
    assert 'strangler_rollout_analyses_total{result="inconclusive",route="images"} 0.0' in text
    assert (await client.get("/healthz")).status == 200


async def test_a_command_takes_effect_at_once_and_is_logged_as_the_operators(
    rig: Rig, aiohttp_client: Any
) -> None:
    client = await client_for(rig, aiohttp_client)

    with capture_logs() as logs:
        response = await client.post("/routes/images/promote", headers=AUTH)

    assert response.status == 200
    body = await response.json()
    assert (body["action"], body["phase"], body["percent"], body["step"]) == ("promote", "progressing", 50, 1)
    assert rig.percent() == 50
    step = next(line for line in logs if line["event"] == "rollout_step")
    assert (step["by"], step["action"], step["to_percent"]) == ("operator", "promote", 50)
    assert any(line["event"] == "rollout_command" and line["by"] == "operator" for line in logs)


async def test_abort_goes_to_zero_then_promote_is_refused_with_the_reason_and_restart_starts_over(
    rig: Rig, aiohttp_client: Any
) -> None:
    client = await client_for(rig, aiohttp_client)

    aborted = await client.post("/routes/images/abort", headers=AUTH, json={"reason": "pager went off"})
    assert aborted.status == 200
    assert (await aborted.json())["reason"] == "aborted: pager went off"
    assert rig.percent() == 0

    refused = await client.post("/routes/images/promote", headers=AUTH)
    assert refused.status == 409
    error = (await refused.json())["error"]
    assert error["code"] == "refused"
    assert "aborted" in error["message"]
    assert "restart" in error["message"]

    restarted = await client.post("/routes/images/restart", headers=AUTH)
    assert restarted.status == 200
    assert rig.percent() == 10


async def test_a_move_that_does_not_apply_is_409_and_changes_nothing(rig: Rig, aiohttp_client: Any) -> None:
    client = await client_for(rig, aiohttp_client)
    before = rig.path.read_text()

    response = await client.post("/routes/images/resume", headers=AUTH)

    assert response.status == 409
    error = (await response.json())["error"]
    assert error == {"code": "refused", "message": "resume images: the rollout is not paused"}
    assert rig.path.read_text() == before


async def test_a_command_that_would_write_an_invalid_file_is_refused_and_the_file_kept(
    rig: Rig, aiohttp_client: Any
) -> None:
    client = await client_for(rig, aiohttp_client)
    broken = rig.path.read_text().replace("version: 1", "version: 2")
    rig.path.write_text(broken)

    response = await client.post("/routes/images/promote", headers=AUTH)

    assert response.status == 409
    error = (await response.json())["error"]
    assert error["code"] == "write_refused"
    assert "version" in error["message"]
    assert rig.path.read_text() == broken


async def test_commands_need_the_token(rig: Rig, aiohttp_client: Any) -> None:
    client = await client_for(rig, aiohttp_client)

    missing = await client.post("/routes/images/pause")
    wrong = await client.post("/routes/images/pause", headers={"Authorization": "Bearer nope"})

    assert (missing.status, wrong.status) == (401, 401)
    assert (await wrong.json())["error"]["code"] == "unauthorized"
    text = await (await client.get("/metrics")).text()
    assert 'strangler_rollout_auth_failures_total{reason="missing"} 1.0' in text
    assert 'strangler_rollout_auth_failures_total{reason="wrong"} 1.0' in text
    assert rig.percent() == 10


async def test_without_a_configured_token_commands_are_off_and_status_still_answers(
    rig: Rig, aiohttp_client: Any
) -> None:
    client = await client_for(rig, aiohttp_client, token=None)

    response = await client.post("/routes/images/pause", headers=AUTH)

    assert response.status == 403
    error = (await response.json())["error"]
    assert error["code"] == "commands_disabled"
    assert "STRANGLER_ADMIN_TOKEN" in error["message"]
    assert (await client.get("/status")).status == 200


async def test_an_unknown_route_action_or_body_says_what_was_wrong(rig: Rig, aiohttp_client: Any) -> None:
    client = await client_for(rig, aiohttp_client)

    route = await client.post("/routes/thumbs/pause", headers=AUTH)
    action = await client.post("/routes/images/rollback", headers=AUTH)
    body = await client.post("/routes/images/pause", headers=AUTH, data=b"[1, 2]")

    assert route.status == 404
    assert (await route.json())["error"] == {
        "code": "unknown_route",
        "message": "no rollout named 'thumbs' (routes with a progressive block: images)",
    }
    assert action.status == 404
    assert "error" in await action.json()
    assert body.status == 400
    assert (await body.json())["error"]["code"] == "bad_request"


async def test_pause_with_a_reason_holds_the_route_until_resume(rig: Rig, aiohttp_client: Any) -> None:
    client = await client_for(rig, aiohttp_client)

    reason = {"reason": "deploy freeze"}
    paused = await (await client.post("/routes/images/pause", headers=AUTH, json=reason)).json()
    resumed = await (await client.post("/routes/images/resume", headers=AUTH)).json()

    assert (paused["phase"], paused["paused_by"]) == ("paused", "operator")
    assert "deploy freeze" in paused["reason"]
    assert paused["next_analysis_in_s"] is None
    assert (resumed["phase"], resumed["percent"]) == ("progressing", 10)
