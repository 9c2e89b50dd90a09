"""The ConfigMap target through the real `kubernetes` client against a fake API server on loopback
(fake_kube.py): the same HTTP a cluster would see, no mock of the client."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer
from kubernetes.client import ApiClient, Configuration

from proxy.controller.configmap import FIELD_MANAGER, STATE_ANNOTATION, ConfigMapError, ConfigMapTarget
from proxy.controller.target import Conflict, Target
from tests.integration.proxy.conftest import closed_port
from tests.integration.proxy.controller.fake_kube import FakeKube

REPO = Path(__file__).resolve().parents[4]
NS, NAME = "strangler", "strangler-routes"
TOKEN = "kube-token-DO-NOT-LEAK-0123456789"
ROUTES = "version: 1   # schema version\nroutes:\n  - name: images\n    rollout:\n      percent: 10\n"
EDITED = ROUTES.replace("percent: 10", "percent: 25")
OTHER_DATA = {"notes.txt": "kept as it is\n"}
ANNOTATIONS = {"kubectl.kubernetes.io/last-applied-configuration": '{"kind":"ConfigMap"}', "team": "images"}
LABELS = {"app.kubernetes.io/name": "strangler-proxy"}

MakeServer = Callable[[web.Application], Awaitable[TestServer]]


@pytest.fixture
async def kube(aiohttp_server: MakeServer) -> FakeKube:
    fake = FakeKube(token=TOKEN)
    fake.create(NS, NAME, {"routes.yaml": ROUTES, **OTHER_DATA}, annotations=ANNOTATIONS, labels=LABELS)
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("")).rstrip("/")
    return fake


def api_client_for(kube: FakeKube, token: str = TOKEN) -> ApiClient:
    configuration = Configuration(
        host=kube.url, api_key={"BearerToken": token}, api_key_prefix={"BearerToken": "Bearer"}
    )
    return ApiClient(configuration)


@pytest.fixture
def api_client(kube: FakeKube) -> Iterator[ApiClient]:
    with api_client_for(kube) as client:
        yield client


@pytest.fixture
def target(api_client: ApiClient) -> ConfigMapTarget:
    return ConfigMapTarget(NS, NAME, api_client=api_client, timeout_s=5)


def data_of(kube: FakeKube, name: str = NAME) -> dict[str, str]:
    return dict(kube.get(NS, name)["data"])


def version_of(kube: FakeKube) -> int:
    return int(kube.get(NS, NAME)["metadata"]["resourceVersion"])


async def test_it_reads_the_routes_text_and_names_itself_namespace_name_and_key(
    target: ConfigMapTarget,
) -> None:
    checked: Target = target  # it is a Target, as the controller sees it

    assert await checked.read() == ROUTES
    assert target.description == "configmap:strangler/strangler-routes#routes.yaml"


async def test_a_write_replaces_only_its_key_and_bumps_the_resource_version(
    kube: FakeKube, target: ConfigMapTarget
) -> None:
    before = kube.get(NS, NAME)

    await target.write(EDITED, expected=await target.read())

    after = kube.get(NS, NAME)
    assert after["data"] == {"routes.yaml": EDITED, **OTHER_DATA}
    assert after["metadata"]["annotations"] == ANNOTATIONS
    assert after["metadata"]["labels"] == LABELS
    assert int(after["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])
    (patch,) = kube.patches()
    assert patch.body["data"] == {"routes.yaml": EDITED}, "the patch names only the key it changes"
    assert patch.body["metadata"] == {"resourceVersion": before["metadata"]["resourceVersion"]}
    assert patch.query["fieldManager"] == FIELD_MANAGER
    assert await target.read() == EDITED


async def test_an_operators_edit_since_the_read_is_a_conflict_and_nothing_is_sent(
    kube: FakeKube, target: ConfigMapTarget
) -> None:
    read = await target.read()
    kube.edit(NS, NAME, {"data": {"routes.yaml": EDITED}})

    with pytest.raises(Conflict):
        await target.write(ROUTES.replace("percent: 10", "percent: 50"), expected=read)

    assert data_of(kube)["routes.yaml"] == EDITED
    assert kube.patches() == []


async def test_an_edit_between_the_writes_own_read_and_its_patch_is_refused_by_the_api_server(
    kube: FakeKube, target: ConfigMapTarget
) -> None:
    read = await target.read()
    kube.after_next_get = lambda: kube.edit(NS, NAME, {"data": {"routes.yaml": EDITED}})

    with pytest.raises(Conflict):
        await target.write(ROUTES.replace("percent: 10", "percent: 50"), expected=read)

    assert data_of(kube) == {"routes.yaml": EDITED, **OTHER_DATA}, "the operator's edit stands"
    (patch,) = kube.patches()  # sent with the stale resourceVersion: 409, and not sent again
    assert patch.body["data"] == {"routes.yaml": ROUTES.replace("percent: 10", "percent: 50")}


async def test_a_change_elsewhere_in_the_object_meanwhile_is_no_conflict_and_is_kept(
    kube: FakeKube, target: ConfigMapTarget
) -> None:
    read = await target.read()
    kube.after_next_get = lambda: kube.edit(NS, NAME, {"metadata": {"annotations": {"team": "platform"}}})

    await target.write(EDITED, expected=read)

    after = kube.get(NS, NAME)
    assert after["data"]["routes.yaml"] == EDITED
    assert after["metadata"]["annotations"]["team"] == "platform"
    assert len(kube.patches()) == 2, "the 409 was followed by a fresh read and one more patch"


async def test_the_state_round_trips_through_an_annotation_and_never_reaches_the_mounted_data(
    kube: FakeKube, target: ConfigMapTarget
) -> None:
    state = json.dumps({"version": 1, "routes": {"images": {"phase": "progressing", "step_index": 2}}})
    assert await target.load_state() is None
    version = version_of(kube)

    await target.save_state(state)

    assert await target.load_state() == state
    after = kube.get(NS, NAME)
    assert after["data"] == {"routes.yaml": ROUTES, **OTHER_DATA}
    assert after["metadata"]["annotations"] == {**ANNOTATIONS, STATE_ANNOTATION: state}
    assert version_of(kube) > version
    await target.save_state("{}")
    assert await target.load_state() == "{}"
    assert state not in json.dumps(after["data"])


async def test_saving_the_state_between_a_read_and_a_write_is_no_conflict(
    kube: FakeKube, target: ConfigMapTarget
) -> None:
    read = await target.read()
    await target.save_state('{"version": 1, "routes": {}}')

    await target.write(EDITED, expected=read)

    assert data_of(kube)["routes.yaml"] == EDITED


async def test_a_configmap_that_does_not_exist_is_a_clear_error(api_client: ApiClient) -> None:
    target = ConfigMapTarget(NS, "no-such-routes", api_client=api_client)

    calls: list[Callable[[], Awaitable[object]]] = [target.read, target.load_state]
    calls.append(lambda: target.write("x", expected="y"))
    calls.append(lambda: target.save_state("{}"))
    for call in calls:
        with pytest.raises(ConfigMapError) as raised:
            await call()
        message = str(raised.value)
        assert "strangler/no-such-routes" in message
        assert "does not exist" in message
        assert 'configmaps "no-such-routes" not found' in message


async def test_a_missing_key_is_a_clear_error_that_lists_the_keys_there(
    kube: FakeKube, api_client: ApiClient
) -> None:
    target = ConfigMapTarget(NS, NAME, key="routes.yml", api_client=api_client)

    with pytest.raises(ConfigMapError, match=r"has no key 'routes.yml' \(its keys: notes.txt, routes.yaml\)"):
        await target.read()
    with pytest.raises(ConfigMapError, match="has no key"):
        await target.write(EDITED, expected=ROUTES)
    assert kube.patches() == []


@pytest.mark.parametrize("missing", ["get", "patch"])
async def test_a_missing_permission_is_named_with_the_role_that_grants_it_never_the_token(
    kube: FakeKube, target: ConfigMapTarget, missing: str
) -> None:
    kube.verbs.discard(missing)

    with pytest.raises(ConfigMapError) as raised:
        await target.write(EDITED, expected=ROUTES)

    message = str(raised.value)
    assert f"permission to {missing} it is missing" in message
    assert "ConfigMap strangler/strangler-routes" in message
    assert "verbs get and patch on resource configmaps, resourceNames [strangler-routes]" in message
    assert f'cannot {missing} resource "configmaps"' in message  # the API server's own words
    assert TOKEN not in message
    assert raised.value.__cause__ is None, "nothing chained: the client's exception carries the exchange"
    assert raised.value.__suppress_context__
    assert data_of(kube)["routes.yaml"] == ROUTES


async def test_a_wrong_token_is_a_clear_error_that_does_not_repeat_it(kube: FakeKube) -> None:
    with api_client_for(kube, token="wrong-token-0123456789") as client:
        target = ConfigMapTarget(NS, NAME, api_client=client)
        with pytest.raises(ConfigMapError, match="refused the credentials") as raised:
            await target.read()
    assert "wrong-token-0123456789" not in str(raised.value)


async def test_an_unreachable_api_server_is_a_clear_error_within_the_timeout() -> None:
    host = f"http://127.0.0.1:{closed_port()}"
    configuration = Configuration(host=host, api_key={"BearerToken": TOKEN})
    configuration.retries = 0
    with ApiClient(configuration) as client:
        target = ConfigMapTarget(NS, NAME, api_client=client, timeout_s=2)
        async with asyncio.timeout(10):
            with pytest.raises(ConfigMapError, match=f"the API server at {host} did not answer"):
                await target.read()


SCRIPT = """
import asyncio, sys
from proxy.controller.configmap import ConfigMapTarget
print(asyncio.run(ConfigMapTarget(sys.argv[1], sys.argv[2]).read()), end="")
"""


async def run_target(tmp_path: Path, environ: dict[str, str]) -> tuple[int, str, str]:
    """A fresh process that builds the target from the environment alone, as the controller's pod does."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "HOME"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SCRIPT, NS, NAME, env={**env, "HOME": str(tmp_path), **environ}, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_outside_a_pod_the_credentials_come_from_kubeconfig(kube: FakeKube, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    document: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": kube.url}}],
        "users": [{"name": "rollout", "user": {"token": TOKEN}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "rollout"}}],
    }  # fmt: skip
    kubeconfig.write_text(yaml.safe_dump(document))

    code, out, err = await run_target(tmp_path, {"KUBECONFIG": str(kubeconfig)})

    assert (code, out) == (0, ROUTES), err
    assert kube.seen[-1].path == f"/api/v1/namespaces/{NS}/configmaps/{NAME}"


async def test_without_a_service_account_or_a_kubeconfig_the_error_says_where_it_looked(
    tmp_path: Path,
) -> None:
    code, _, err = await run_target(tmp_path, {"KUBECONFIG": str(tmp_path / "missing")})

    assert code != 0
    assert "no Kubernetes credentials: not in a pod with a service account" in err
    assert "KUBECONFIG or ~/.kube/config" in err


async def test_the_fake_refuses_a_stale_resource_version_with_a_status_as_the_api_server_does(
    kube: FakeKube, aiohttp_client: Any
) -> None:
    """The fake itself: what the tests above rely on."""
    client = await aiohttp_client(TestServer(kube.app()))
    path = f"/api/v1/namespaces/{NS}/configmaps/{NAME}"
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/merge-patch+json"}
    stale = {"metadata": {"resourceVersion": "1"}, "data": {"routes.yaml": "x"}}

    response = await client.patch(path, data=json.dumps(stale), headers=headers)
    assert response.status == 409
    assert (await response.json())["reason"] == "Conflict"
    assert (await client.get(path)).status == 401
    response = await client.patch(path, data="[]", headers={**headers, "Content-Type": "application/json"})
    assert response.status == 415
    assert data_of(kube)["routes.yaml"] == ROUTES
