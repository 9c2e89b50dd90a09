"""deploy/k8s: valid against the Kubernetes schemas (kubernetes-validate ships them: offline), and wired
together: probes on the right endpoints, the ConfigMap mounted as a watchable directory, selectors that
select, an HPA that scales the proxy."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from tests.deploy.tools import DEPLOY, run, tool

K8S = DEPLOY / "k8s"


def documents() -> list[dict[str, Any]]:
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        found.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return found


def one(kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def test_every_manifest_is_valid_against_the_kubernetes_schemas_strictly() -> None:
    files = sorted(str(p) for p in K8S.glob("*.yaml"))
    assert files
    result = run(tool("kubernetes-validate"), "--strict", *files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") == len(documents())


def test_the_validator_rejects_a_manifest_with_a_misspelt_field(tmp_path: Path) -> None:
    text = (K8S / "proxy.yaml").read_text().replace("readinessProbe:", "readynessProbe:", 1)
    (tmp_path / "proxy.yaml").write_text(text)
    result = run(tool("kubernetes-validate"), "--strict", str(tmp_path / "proxy.yaml"))
    assert result.returncode != 0


def test_the_proxy_is_ready_only_when_readyz_says_so_on_the_admin_port() -> None:
    pod = one("Deployment", "strangler-proxy")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    args = container["args"]
    assert args[args.index("--admin-port") + 1] == str(ports["admin"])
    assert args[args.index("--port") + 1] == str(ports["http"])
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_routes_come_from_the_configmap_mounted_as_a_directory_so_updates_reach_the_proxy() -> None:
    pod = one("Deployment", "strangler-proxy")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = container["args"]
    config_path = Path(args[args.index("--config") + 1])
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == str(config_path.parent)]
    assert "subPath" not in mount, "a subPath mount never sees ConfigMap updates"
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    configmap = one("ConfigMap", volume["configMap"]["name"])
    assert config_path.name in configmap["data"]


@pytest.mark.parametrize("name", ["strangler-proxy", "imageservice", "legacy"])
def test_each_service_selects_the_pods_of_its_deployment_on_a_named_port(name: str) -> None:
    deployment = one("Deployment", name)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    port_names = {p["name"] for p in container["ports"]}
    service = one("Service", name)
    assert service["spec"]["selector"].items() <= labels.items()
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names


def test_the_hpa_scales_the_proxy_deployment_from_at_least_two_replicas() -> None:
    hpa = one("HorizontalPodAutoscaler", "strangler-proxy")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "strangler-proxy"}
    assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]


def test_the_image_service_replicas_share_state_through_aws_storage() -> None:
    deployment = one("Deployment", "imageservice")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert deployment["spec"]["replicas"] > 1
    assert env["IMAGESERVICE_STORAGE"] == "aws"


SHADOW_KEY_SECRET = "strangler-shadow-key"
CREATE_SHADOW_KEY = (
    f'kubectl create secret generic {SHADOW_KEY_SECRET} --from-literal=key="$(openssl rand -hex 32)"'
)


@pytest.mark.parametrize("name", ["strangler-proxy", "legacy", "imageservice"])
def test_each_pod_reads_the_shared_shadow_key_from_the_secret_mounted_as_a_file(name: str) -> None:
    pod = one("Deployment", name)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert "STRANGLER_SHADOW_KEY" not in env, "the key or its file, never both"
    key_file = PurePosixPath(env["STRANGLER_SHADOW_KEY_FILE"]["value"])
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == str(key_file.parent)]
    assert mount["readOnly"] is True
    assert "subPath" not in mount, "a subPath mount never sees a rotated Secret"
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    secret = volume["secret"]
    assert secret["secretName"] == SHADOW_KEY_SECRET
    assert secret["items"] == [{"key": "key", "path": key_file.name}]
    assert not secret.get("optional", False), "without the key the pod waits, it never runs unsigned"
    assert secret["defaultMode"] & 0o007 == 0, "not readable by other users"
    assert secret["defaultMode"] & 0o040, "readable by the group fsGroup gives the file"
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]


def test_the_one_command_that_creates_the_shadow_key_secret_is_documented() -> None:
    assert CREATE_SHADOW_KEY in (K8S / "proxy.yaml").read_text()
    assert CREATE_SHADOW_KEY in (DEPLOY / "README.md").read_text()


def test_reconcile_runs_from_one_cronjob_never_two_at_once_against_the_services_storage() -> None:
    job = one("CronJob", "imageservice-reconcile")
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"][0] == "reconcile"
    service = one("Deployment", "imageservice")["spec"]["template"]["spec"]["containers"][0]
    names = {"IMAGESERVICE_STORAGE", "IMAGESERVICE_S3_BUCKET", "IMAGESERVICE_DYNAMODB_TABLE", "AWS_REGION"}
    storage = {e["name"]: e.get("value") for e in service["env"] if e["name"] in names}
    assert {e["name"]: e.get("value") for e in container["env"]} == storage
    assert container["image"] == service["image"]


def test_the_proxy_runs_a_worker_per_cpu_of_its_limit_with_a_writable_tmp_for_their_sockets() -> None:
    pod = one("Deployment", "strangler-proxy")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = container["args"]
    assert args[args.index("--workers") + 1] == "auto"
    assert "cpu" in container["resources"]["limits"], "auto counts the CPU limit; without one, the node's"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    (tmp,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == tmp["name"]]
    assert "emptyDir" in volume
