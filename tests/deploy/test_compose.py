"""docker-compose.yml and the routes it mounts, checked with Debian's docker-compose (no engine needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from imageservice.settings import Settings
from tests.deploy.tools import DEPLOY, REPO, run, tool


def compose_config(*extra_env: str) -> dict[str, Any]:
    """The file as docker-compose resolves it (interpolation, anchors, merges), from a clean environment."""
    result = run("env", "-i", f"PATH={Path(tool('docker-compose')).parent}", *extra_env,
                 tool("docker-compose"), "-f", "docker-compose.yml", "config")  # fmt: skip
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert isinstance(config, dict)
    return config


def mounts(service: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """target -> (source, read_only), from the short (`src:dst:ro`) or the long syntax."""
    found = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target, *mode = volume.split(":")
            found[target] = (source, mode == ["ro"])
        else:
            found[volume["target"]] = (volume["source"], bool(volume.get("read_only")))
    return found


def published(service: dict[str, Any]) -> set[tuple[str, int]]:
    """(host address, container port) of every published port; "" for all addresses."""
    found = set()
    for port in service.get("ports", []):
        if isinstance(port, str):
            parts = port.split("/")[0].split(":")
            found.add((parts[0] if len(parts) == 3 else "", int(parts[-1])))
        else:
            found.add((port.get("host_ip", ""), int(port["target"])))
    return found


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return compose_config()


def test_docker_compose_accepts_the_file(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) >= {
        "legacy", "moto", "imageservice-init", "imageservice", "proxy", "prometheus", "grafana",
    }  # fmt: skip


def test_docker_compose_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  proxy:\n    depends_on: {legacy: {condition: when_it_feels_like_it}}\n")
    result = run(tool("docker-compose"), "-f", str(broken), "config", cwd=tmp_path)
    assert result.returncode != 0


def test_the_image_service_stores_in_the_s3_and_dynamodb_emulator_created_before_it_starts(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    service, init = services["imageservice"], services["imageservice-init"]
    for env in (service["environment"], init["environment"]):
        assert env["IMAGESERVICE_STORAGE"] == "aws"
        assert env["AWS_ENDPOINT_URL"] == "http://moto:5000"
    assert services["moto"]["image"].startswith("motoserver/moto:")
    assert init["command"] == ["init-aws"]
    assert init["depends_on"]["moto"]["condition"] == "service_healthy"
    assert service["depends_on"]["imageservice-init"]["condition"] == "service_completed_successfully"
    env = {k: str(v) for k, v in service["environment"].items()}
    env["OPENAI_API_KEY_FILE"] = compose["secrets"]["openai_api_key"]["file"]  # the mounted secret
    settings = Settings.from_env(env)
    assert (settings.storage, settings.aws_endpoint_url) == ("aws", "http://moto:5000")
    assert settings.openai_api_key is None  # the default secret is empty: no key, local generator
    assert (settings.s3_bucket, settings.dynamodb_table) == (
        init["environment"]["IMAGESERVICE_S3_BUCKET"], init["environment"]["IMAGESERVICE_DYNAMODB_TABLE"]
    )


def test_the_openai_key_comes_from_the_environment_or_a_docker_secret_and_defaults_to_none(
    compose: dict[str, Any],
) -> None:
    env = compose["services"]["imageservice"]["environment"]
    assert env["IMAGESERVICE_GENERATOR"] == "local"
    assert env.get("OPENAI_API_KEY", "") == ""
    assert env["OPENAI_API_KEY_FILE"] == "/run/secrets/openai_api_key"
    default_secret = Path(compose["secrets"]["openai_api_key"]["file"])
    assert default_secret.read_text() == ""  # no key unless the operator gives one
    given = compose_config("OPENAI_API_KEY=sk-from-env", "IMAGESERVICE_GENERATOR=openai")
    assert given["services"]["imageservice"]["environment"]["OPENAI_API_KEY"] == "sk-from-env"
    filed = compose_config("OPENAI_API_KEY_SECRET_FILE=/run/keys/openai")
    assert filed["secrets"]["openai_api_key"]["file"] == "/run/keys/openai"


def test_the_proxy_reads_its_routes_from_a_read_only_directory_mount_so_edits_reload_live(
    compose: dict[str, Any],
) -> None:
    proxy = compose["services"]["proxy"]
    source, read_only = mounts(proxy)["/etc/strangler"]
    assert read_only
    assert Path(source) == DEPLOY / "compose"  # a directory: editors and ConfigMaps replace files
    assert {"legacy", "imageservice"} <= set(proxy["depends_on"])
    ports = published(proxy)
    assert ("", 8080) in ports
    assert ("127.0.0.1", 8089) in ports, "the admin listener is published on the host's loopback"
    assert ("", 8089) not in ports, "the admin listener is never published on every address"


def test_prometheus_and_grafana_are_provisioned_from_files_in_the_repo(compose: dict[str, Any]) -> None:
    services = compose["services"]
    sources = {
        (name, target): Path(source)
        for name in ("prometheus", "grafana")
        for target, (source, read_only) in mounts(services[name]).items()
        if read_only
    }
    assert sources[("prometheus", "/etc/prometheus")] == DEPLOY / "prometheus"
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    assert sources[("grafana", "/etc/grafana/provisioning")] == DEPLOY / "grafana" / "provisioning"
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/strangler.yml").read_text())
    dashboards_path = provider["providers"][0]["options"]["path"]
    assert sources[("grafana", dashboards_path)] == DEPLOY / "grafana" / "dashboards"
    assert (DEPLOY / "grafana/dashboards/strangler.json").is_file()


def test_every_service_built_from_the_repo_uses_a_target_the_dockerfile_defines(
    compose: dict[str, Any],
) -> None:
    for name, service in compose["services"].items():
        build = service.get("build")
        if build is None:
            continue
        dockerfile = (REPO / build["dockerfile"]).read_text()
        if "target" in build:
            assert f" AS {build['target']}\n" in dockerfile, f"{name}: no stage {build['target']}"
