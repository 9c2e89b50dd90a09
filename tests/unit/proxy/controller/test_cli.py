"""`rollout status` and the commands against a real listener, and what `rollout run` refuses."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from proxy.controller.cli import main, status_table
from proxy.controller.listener import create_controller_app
from tests.unit.proxy.controller.rig import Rig

TOKEN = "cli-test-token-0123456789abcdef"
REPO = Path(__file__).resolve().parents[4]


@pytest.fixture(autouse=True)
def quiet_logs() -> Iterator[None]:
    """The listener's log lines (structlog, unconfigured here) would land in the captured stdout."""
    with capture_logs():
        yield


async def listener(rig: Rig, aiohttp_server: Any) -> str:
    server: TestServer = await aiohttp_server(create_controller_app(rig.controller(), token=TOKEN))
    return str(server.make_url("")).rstrip("/")


async def cli(*argv: str, environ: dict[str, str] | None = None) -> int:
    """main() in a thread, as from a shell: it runs its own event loop."""
    env = {"STRANGLER_ADMIN_TOKEN": TOKEN} if environ is None else environ
    return await asyncio.to_thread(main, list(argv), environ=env)


async def test_status_prints_one_line_per_route_with_the_current_step_in_brackets(
    rig: Rig, aiohttp_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    url = await listener(rig, aiohttp_server)

    assert await cli("status", "--controller", url, environ={}) == 0  # status needs no token

    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"target file:{rig.path}, prometheus {rig.prometheus.url} (reachable)"
    assert lines[1].split() == ["ROUTE", "PHASE", "PERCENT", "STEPS", "LAST", "REASON"]
    assert lines[2].split()[:7] == ["images", "progressing", "10", "[10]", "50", "100", "-"]
    assert lines[2].endswith("  started at the first step")
    assert lines[1].index("REASON") == lines[2].index("started")  # the columns line up


async def test_status_json_is_the_listeners_answer(
    rig: Rig, aiohttp_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    url = await listener(rig, aiohttp_server)

    assert await cli("status", "--json", "--controller", url) == 0

    body = json.loads(capsys.readouterr().out)
    assert [route["route"] for route in body["routes"]] == ["images"]
    assert body["routes"][0]["phase"] == "progressing"


async def test_a_command_says_where_the_rollout_is_now(
    rig: Rig, aiohttp_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    url = await listener(rig, aiohttp_server)

    assert await cli("pause", "images", "--reason", "freeze", "--controller", url) == 0
    assert capsys.readouterr().out == (
        "images: pause: paused (operator) at 10 %, steps [10] 50 100 — paused by an operator: freeze\n"
    )
    assert await cli("promote", "images", "--controller", url) == 0
    assert "images: promote: progressing at 50 %, steps 10 [50] 100" in capsys.readouterr().out
    assert rig.percent() == 50


async def test_a_refused_command_exits_1_with_the_controllers_reason(
    rig: Rig, aiohttp_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    url = await listener(rig, aiohttp_server)

    assert await cli("resume", "images", "--controller", url) == 1
    assert capsys.readouterr().err == (
        "resume images: HTTP 409 refused: resume images: the rollout is not paused\n"
    )
    assert await cli("abort", "images", "--controller", url, environ={}) == 1
    assert "HTTP 401 unauthorized" in capsys.readouterr().err
    assert rig.percent() == 10


async def test_the_token_can_come_from_a_file(
    rig: Rig, aiohttp_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = await listener(rig, aiohttp_server)
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")

    environ = {"STRANGLER_ADMIN_TOKEN_FILE": str(secret)}
    assert await cli("abort", "images", "--controller", url, environ=environ) == 0
    assert rig.percent() == 0
    assert "images: abort: aborted at 0 %" in capsys.readouterr().out


async def test_an_unreachable_controller_is_said_with_its_address(capsys: pytest.CaptureFixture[str]) -> None:
    assert await cli("status", "--controller", "http://127.0.0.1:9") == 1
    assert "cannot reach the controller at http://127.0.0.1:9" in capsys.readouterr().err


def test_the_table_marks_a_pause_step_and_cuts_a_long_reason() -> None:
    body = {
        "target": "file:routes.yaml",
        "prometheus": {"url": "http://prom:9090", "reachable": False},
        "routes": [{"route": "images", "phase": "paused", "paused_by": "step", "percent": 5, "step": 2,
                    "steps": [1, 5, "pause", 25], "reason": "x" * 200,
                    "last_analysis": {"result": "passed"}}],
    }  # fmt: skip

    lines = status_table(body, reason_width=20).splitlines()

    assert lines[0] == "target file:routes.yaml, prometheus http://prom:9090 (UNREACHABLE)"
    cut = "x" * 19 + "…"
    assert lines[2].split() == ["images", "paused:step", "5", "1", "5", "[pause]", "25", "passed", cut]
    assert status_table({**body, "routes": []}).endswith("no route has a progressive block")


def run_controller(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "proxy.controller", "run", *argv], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip


def test_run_refuses_a_state_file_it_cannot_read_and_writes_nothing(tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text("version: 1\n")
    (tmp_path / "routes.yaml.rollout.json").write_text("{not json")

    result = run_controller("--config", str(routes), "--prometheus", "http://127.0.0.1:9",
                            "--listen", "127.0.0.1:0")  # fmt: skip

    assert result.returncode == 1
    assert "the controller's state for file:" in result.stderr
    assert "move it away" in result.stderr
    assert routes.read_text() == "version: 1\n"


def test_run_refuses_a_malformed_listen_address_or_target() -> None:
    bad_listen = run_controller("--config", "r.yaml", "--prometheus", "http://p", "--listen", "8090")
    bad_target = run_controller("--target", "configmap:only-a-namespace", "--prometheus", "http://p")

    assert bad_listen.returncode == 2
    assert "--listen '8090': HOST:PORT" in bad_listen.stderr
    assert bad_target.returncode == 2
    assert "configmap:NAMESPACE/NAME" in bad_target.stderr
