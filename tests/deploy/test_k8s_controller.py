"""deploy/k8s/rollout-controller.yaml: the rollout controller may touch the routes ConfigMap and nothing
else, runs once, from the proxy image (which carries the kubernetes client), locked down like the other
pods. Validity against the Kubernetes schemas is test_k8s.py's (every file of deploy/k8s)."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from tests.deploy.test_k8s import K8S, documents, one
from tests.deploy.tools import REPO, parse_dockerfile

NAME = "strangler-rollout"
ROUTES_CONFIGMAP = "strangler-routes"


def pod() -> dict[str, Any]:
    spec: dict[str, Any] = one("Deployment", NAME)["spec"]["template"]["spec"]
    return spec


def container() -> dict[str, Any]:
    (found,) = pod()["containers"]
    return dict(found)


def test_the_role_allows_get_update_patch_on_the_routes_configmap_and_nothing_else() -> None:
    role = one("Role", NAME)
    assert "namespace" not in role["metadata"], "a Role in the namespace the manifests are applied to"
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [ROUTES_CONFIGMAP],
         "verbs": ["get", "update", "patch"]},
    ]  # fmt: skip
    assert one("ConfigMap", ROUTES_CONFIGMAP)
    assert not [d for d in documents() if d["kind"] in {"ClusterRole", "ClusterRoleBinding"}]


def test_only_the_controllers_service_account_is_bound_to_the_role_and_only_its_pod_mounts_a_token() -> None:
    binding = one("RoleBinding", NAME)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": NAME}]
    assert one("ServiceAccount", NAME)["automountServiceAccountToken"] is False
    assert pod()["serviceAccountName"] == NAME
    assert pod()["automountServiceAccountToken"] is True
    for deployment in (d for d in documents() if d["kind"] == "Deployment" and d["metadata"]["name"] != NAME):
        spec = deployment["spec"]["template"]["spec"]
        assert spec.get("serviceAccountName", "default") != NAME, deployment["metadata"]["name"]


def test_one_controller_from_the_proxy_image_targets_the_configmap_the_proxy_mounts() -> None:
    deployment = one("Deployment", NAME)
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}, "never two controllers, even in an update"
    proxy_pod = one("Deployment", "strangler-proxy")["spec"]["template"]["spec"]
    assert container()["image"] == proxy_pod["containers"][0]["image"]
    args = container()["args"]
    assert args[:2] == ["rollout", "run"]
    assert args[args.index("--target") + 1] == f"configmap:$(POD_NAMESPACE)/{ROUTES_CONFIGMAP}"
    env = {e["name"]: e for e in container()["env"]}
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert {"configMap": {"name": ROUTES_CONFIGMAP}} in [
        {k: v for k, v in volume.items() if k != "name"} for volume in proxy_pod["volumes"]
    ]
    assert args[args.index("--prometheus") + 1].startswith("http")


def test_the_listener_is_probed_on_healthz_and_served_inside_the_cluster_only() -> None:
    listen = container()["args"][container()["args"].index("--listen") + 1]
    host, port = listen.rsplit(":", 1)
    assert host == "0.0.0.0"
    (named,) = [p for p in container()["ports"] if p["containerPort"] == int(port)]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container()[probe]["httpGet"] == {"path": "/healthz", "port": named["name"]}
    service = one("Service", NAME)["spec"]
    assert service["type"] == "ClusterIP"
    labels = one("Deployment", NAME)["spec"]["template"]["metadata"]["labels"]
    assert service["selector"].items() <= labels.items()
    assert [p["targetPort"] for p in service["ports"]] == [named["name"]]


def test_the_admin_token_comes_from_the_secret_as_a_file_and_the_pod_is_locked_down() -> None:
    env = {e["name"]: e for e in container()["env"]}
    assert "STRANGLER_ADMIN_TOKEN" not in env, "the token or its file, never both"
    token = PurePosixPath(env["STRANGLER_ADMIN_TOKEN_FILE"]["value"])
    (mount,) = [m for m in container()["volumeMounts"] if m["mountPath"] == str(token.parent)]
    assert mount["readOnly"] is True
    (volume,) = [v for v in pod()["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["secretName"] == "strangler-admin"
    assert volume["secret"]["items"] == [{"key": "token", "path": token.name}]
    assert volume["secret"]["defaultMode"] & 0o007 == 0
    assert pod()["securityContext"]["runAsNonRoot"] is True
    assert container()["securityContext"]["readOnlyRootFilesystem"] is True
    assert container()["securityContext"]["allowPrivilegeEscalation"] is False
    resources = container()["resources"]
    assert {"cpu", "memory"} <= resources["requests"].keys()
    assert {"cpu", "memory"} <= resources["limits"].keys()
    command = 'kubectl create secret generic strangler-admin --from-literal=token="$(openssl rand -hex 32)"'
    assert command in (K8S / "rollout-controller.yaml").read_text()


def test_the_proxy_image_carries_the_kubernetes_client_the_controller_needs() -> None:
    build = parse_dockerfile(REPO / "Dockerfile.proxy")[0]
    (wheel,) = [i for i in build.instructions if i.keyword == "RUN" and "pip wheel" in i.args]
    assert wheel.args.split()[-1].strip("\"'") == ".[k8s]"
