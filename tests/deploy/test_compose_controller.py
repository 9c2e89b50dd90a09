"""The rollout controller in docker-compose.yml: off unless asked for, on the routes the proxy reads,
listening where Prometheus scrapes it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.test_compose import compose_config, mounts, published
from tests.deploy.tools import DEPLOY


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return compose_config()


def test_the_controller_runs_only_with_the_rollout_profile_from_the_proxys_image(
    compose: dict[str, Any],
) -> None:
    controller = compose["services"]["rollout-controller"]
    assert controller["profiles"] == ["rollout"]  # `docker compose up` alone does not start it
    assert controller["build"]["dockerfile"] == compose["services"]["proxy"]["build"]["dockerfile"]
    command = controller["command"]
    assert command[:2] == ["rollout", "run"]
    assert "--workers" not in command


def test_the_controller_edits_the_routes_file_the_proxy_reads_and_keeps_its_state_beside_it(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    command = services["rollout-controller"]["command"]
    routes = Path(command[command.index("--config") + 1])
    source, read_only = mounts(services["rollout-controller"])[str(routes.parent)]
    assert not read_only  # the rename and the .rollout.json state need a writable directory
    assert Path(source) == DEPLOY / "compose"
    assert mounts(services["proxy"])[str(routes.parent)] == (source, True)
    assert services["rollout-controller"]["user"] == "10001:10001"  # CONTROLLER_USER overrides it
    mine = compose_config("CONTROLLER_USER=1000:1000")["services"]["rollout-controller"]
    assert mine["user"] == "1000:1000"


def test_prometheus_scrapes_the_controller_where_it_listens_and_only_loopback_publishes_it(
    compose: dict[str, Any],
) -> None:
    controller = compose["services"]["rollout-controller"]
    command = controller["command"]
    port = int(command[command.index("--listen") + 1].rsplit(":", 1)[1])
    assert command[command.index("--prometheus") + 1] == "http://prometheus:9090"
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = [job for job in prometheus["scrape_configs"] if job["job_name"] == "rollout-controller"]
    assert job["static_configs"][0]["targets"] == [f"rollout-controller:{port}"]
    assert published(controller) == {("127.0.0.1", port)}
    assert f"http://127.0.0.1:{port}/healthz" in controller["healthcheck"]["test"]
