"""docker-compose.yml and the routes it mounts, checked with Debian's docker-compose (no engine needed)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from imageservice.settings import Settings
from strangler_common.envsecret import shadow_key
from tests.deploy.tools import DEPLOY, REPO, run, tool

SHADOW_KEY_READERS = ("proxy", "legacy", "imageservice")


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
        "shadow-key-init",
    }  # fmt: skip


def test_docker_compose_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  proxy:\n    depends_on: {legacy: {condition: when_it_feels_like_it}}\n")
    result = run(tool("docker-compose"), "-f", str(broken), "config", cwd=tmp_path)
    assert result.returncode != 0


def test_the_image_service_stores_in_the_s3_and_dynamodb_emulator_created_before_it_starts(
    compose: dict[str, Any], tmp_path: Path
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
    (tmp_path / "shadow-key").write_text("s" * 64)  # what shadow-key-init writes into the volume
    env["STRANGLER_SHADOW_KEY_FILE"] = str(tmp_path / "shadow-key")
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


@pytest.mark.parametrize("name", SHADOW_KEY_READERS)
def test_each_service_reads_the_shadow_key_from_the_volume_the_init_writes_before_it_starts(
    compose: dict[str, Any], name: str
) -> None:
    service, init = compose["services"][name], compose["services"]["shadow-key-init"]
    key_file = PurePosixPath(service["environment"]["STRANGLER_SHADOW_KEY_FILE"])
    assert "STRANGLER_SHADOW_KEY" not in service["environment"], "the key or its file, never both"
    assert mounts(service)[str(key_file.parent)] == ("shadow-key", True)
    assert service["depends_on"]["shadow-key-init"]["condition"] == "service_completed_successfully"
    written = PurePosixPath(init["environment"]["KEY_OUT"])
    assert written.name == key_file.name
    assert mounts(init)[str(written.parent)] == ("shadow-key", False)
    assert "shadow-key" in compose["volumes"]  # named: the key survives restarts and `down`


def test_the_shadow_key_is_generated_by_default_and_can_be_given(compose: dict[str, Any]) -> None:
    init = compose["services"]["shadow-key-init"]
    assert init["environment"]["GIVEN_KEY"] == ""
    assert init["environment"]["GIVEN_KEY_FILE"] == "/run/secrets/shadow_key"
    assert Path(compose["secrets"]["shadow_key"]["file"]).read_text() == ""  # nothing given: generate
    filed = compose_config("STRANGLER_SHADOW_KEY_SECRET_FILE=/run/keys/shadow")
    assert filed["secrets"]["shadow_key"]["file"] == "/run/keys/shadow"
    given = compose_config("STRANGLER_SHADOW_KEY=" + "k" * 64)
    assert given["services"]["shadow-key-init"]["environment"]["GIVEN_KEY"] == "k" * 64
    for name in SHADOW_KEY_READERS:  # still only the file: envsecret refuses the key and its file together
        assert "STRANGLER_SHADOW_KEY" not in given["services"][name]["environment"]


def run_shadow_key_init(
    compose: dict[str, Any], out: Path, *, given: str = "", given_file: str = ""
) -> subprocess.CompletedProcess[str]:
    """The init's own script, run here against files in a temporary directory instead of the volume."""
    init = compose["services"]["shadow-key-init"]
    assert init["entrypoint"] == ["python", "-c"]
    (script,) = init["command"]
    secret = out.parent / "given"
    secret.write_text(given_file)
    env = {
        "PATH": os.environ["PATH"],
        "GIVEN_KEY": given,
        "GIVEN_KEY_FILE": str(secret),
        "KEY_OUT": str(out),
        "KEY_OWNER": f"{os.getuid()}:{os.getgid()}",
    }
    return subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=30, check=False
    )


def test_the_shadow_key_init_generates_a_key_once_then_keeps_it(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "key"

    first = run_shadow_key_init(compose, out)
    assert first.returncode == 0, first.stderr
    key = out.read_text()
    assert stat.S_IMODE(out.stat().st_mode) == 0o400
    assert len(key.strip()) == 64  # secrets.token_hex(32)
    assert set(key.strip()) <= set("0123456789abcdef")
    assert shadow_key({"STRANGLER_SHADOW_KEY_FILE": str(out)}) == key.strip().encode()  # what services read

    again = run_shadow_key_init(compose, out)
    assert again.returncode == 0, again.stderr
    assert out.read_text() == key
    assert "kept" in again.stdout


def test_a_given_shadow_key_replaces_the_stored_one_and_a_short_one_is_refused(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "key"
    assert run_shadow_key_init(compose, out).returncode == 0

    from_file = run_shadow_key_init(compose, out, given_file="f" * 64 + "\n")
    assert from_file.returncode == 0, from_file.stderr
    assert out.read_text().strip() == "f" * 64
    from_env = run_shadow_key_init(compose, out, given="e" * 64, given_file="f" * 64)
    assert from_env.returncode == 0, from_env.stderr
    assert out.read_text().strip() == "e" * 64

    short = run_shadow_key_init(compose, out, given="too-short")
    assert short.returncode != 0
    assert "at least 32 characters" in short.stderr
    assert out.read_text().strip() == "e" * 64


def test_the_proxy_runs_the_images_command_which_starts_a_worker_per_cpu(compose: dict[str, Any]) -> None:
    proxy = compose["services"]["proxy"]
    assert "command" not in proxy, "the image's CMD (--workers auto, test_dockerfiles.py) is the one to run"
    assert proxy["build"]["dockerfile"] == "Dockerfile.proxy"
