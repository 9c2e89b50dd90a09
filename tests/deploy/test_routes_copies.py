"""The routes.yaml copies for containers (compose, Kubernetes) stay the shipped routes.yaml, upstreams aside.

When this fails after an edit of routes.yaml: copy the edit into deploy/compose/routes.yaml and the
ConfigMap in deploy/k8s/routes-configmap.yaml (only upstream URLs and rollout percentages may differ).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from proxy.config import load_config
from tests.deploy.tools import DEPLOY, REPO

SERVICE_URLS = {"legacy": "http://legacy:8081", "imageservice": "http://imageservice:8082"}


def configmap_routes() -> str:
    document = yaml.safe_load((DEPLOY / "k8s" / "routes-configmap.yaml").read_text())
    assert document["kind"] == "ConfigMap"
    text = document["data"]["routes.yaml"]
    assert isinstance(text, str)
    return text


def comparable(data: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(data)
    for upstream in data["upstreams"].values():
        upstream.pop("url")
    for route in data.get("routes", []):
        if isinstance(route.get("rollout"), dict):
            route["rollout"].pop("percent", None)
    return data


@pytest.fixture(params=["compose", "k8s"])
def container_routes(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    if request.param == "compose":
        return DEPLOY / "compose" / "routes.yaml"
    path = tmp_path / "routes.yaml"
    path.write_text(configmap_routes())
    return path


def test_the_container_routes_are_a_valid_config_for_the_proxy(container_routes: Path) -> None:
    loaded = load_config(str(container_routes))
    urls = {name: upstream.url for name, upstream in loaded.config.upstreams.items()}
    assert {name: str(url).rstrip("/") for name, url in urls.items()} == SERVICE_URLS


def test_the_container_routes_differ_from_the_shipped_ones_only_in_upstreams_and_percentages(
    container_routes: Path,
) -> None:
    shipped = yaml.safe_load((REPO / "routes.yaml").read_text())
    mine = yaml.safe_load(container_routes.read_text())
    assert comparable(mine) == comparable(shipped), __doc__
