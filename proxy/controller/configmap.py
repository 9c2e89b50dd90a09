"""routes.yaml as one key of a Kubernetes ConfigMap: the rollout controller's Target on a cluster.

Owns: ConfigMapTarget (read the routes text, write it back compare-and-swap, keep the controller's state
in an annotation of the same ConfigMap) and ConfigMapError (a missing ConfigMap or key, a refused
permission, an unreachable API server, said with the namespace, the name and what to fix; never a
token). Does not own what the text or the state mean (proxy/rollout) nor when to write (the controller).

How it talks to the API server: the official `kubernetes` client (the `k8s` extra, imported on first
use so the controller runs without it against a file). Its calls block: each runs in a thread with a
request timeout. Credentials: the ApiClient handed in (tests), else the pod's service account, else
KUBECONFIG or ~/.kube/config. The Role it needs: `get` and `patch` on `configmaps`, resourceNames [NAME],
in NAMESPACE (deploy/k8s/rollout-controller.yaml).

A write is a compare-and-swap on the text. Read the object; a text other than `expected` is an operator's
edit: Conflict, nothing sent. Else a merge patch of that one key carrying the resourceVersion just read,
so the API server answers 409 if the object changed in between. After a 409 the object is read again: a
changed text is a Conflict; an unchanged one (someone touched another key or an annotation) is tried
again, a few times. The state lives in the annotation `strangler.dev/rollout-state`, never in `data`,
which is mounted into every proxy replica.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from proxy.controller.target import Conflict

if TYPE_CHECKING:
    from kubernetes.client import CoreV1Api, V1ConfigMap

__all__ = ["FIELD_MANAGER", "STATE_ANNOTATION", "ConfigMapError", "ConfigMapTarget"]

STATE_ANNOTATION = "strangler.dev/rollout-state"
FIELD_MANAGER = "strangler-rollout"  # who changed the key, in the object's managedFields
ATTEMPTS = 3  # 409s in a row with the text unchanged before giving up with a Conflict
INSTALL = "pip install 'txt2img-strangler[k8s]'"
T = TypeVar("T")


class ConfigMapError(OSError):
    """The ConfigMap cannot be read or written; the message names it and says what to fix, never a token.

    An OSError, as a routes file that is missing or unreadable is: a controller that handles one handles
    the other."""


class ConfigMapTarget:
    """routes.yaml as one key of a Kubernetes ConfigMap."""

    description: str  # "configmap:NAMESPACE/NAME#key"

    def __init__(
        self,
        namespace: str,
        name: str,
        *,
        key: str = "routes.yaml",
        api_client: Any | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        if not (namespace and name and key):
            raise ValueError(
                f"a ConfigMap target needs a namespace, a name and a key: {namespace}/{name}#{key}"
            )
        self.namespace, self.name, self.key = namespace, name, key
        self.description = f"configmap:{namespace}/{name}#{key}"
        self._api_client = api_client
        self._timeout_s = timeout_s
        self._api: CoreV1Api | None = None
        self._connecting = asyncio.Lock()

    async def read(self) -> str:
        """The routes text: the value of `key` in the ConfigMap's data."""
        return self._text_of(await self._get())

    async def write(self, text: str, *, expected: str) -> None:
        """Replace the text if it is still `expected`, else raise Conflict and change nothing."""
        for _ in range(ATTEMPTS):
            current = await self._get()
            if self._text_of(current) != expected:
                raise Conflict(f"{self.description} changed since it was read (an operator's edit?): "
                               "nothing written")
            version = current.metadata.resource_version if current.metadata else None
            if not version:  # without it the patch would not be conditional: never write blind
                raise ConfigMapError(f"{self.description}: the API server gave no resourceVersion")
            try:
                await self._patch({"metadata": {"resourceVersion": version}, "data": {self.key: text}})
            except Conflict:
                continue  # the object moved between the read and the patch: look at its text again
            return
        raise Conflict(f"{self.description} kept changing during {ATTEMPTS} writes: nothing written")

    async def load_state(self) -> str | None:
        """The controller's JSON state from the annotation, None when it was never saved."""
        current = await self._get()
        annotations = (current.metadata.annotations if current.metadata else None) or {}
        return annotations.get(STATE_ANNOTATION)

    async def save_state(self, text: str) -> None:
        """Keep the state in the annotation; data, the other annotations and labels stay as they are."""
        await self._patch({"metadata": {"annotations": {STATE_ANNOTATION: text}}})

    # ---------------------------------------------------------------- the API server

    def _text_of(self, configmap: V1ConfigMap) -> str:
        data = configmap.data or {}
        if self.key not in data:
            keys = ", ".join(sorted(data)) or "none"
            raise ConfigMapError(
                f"{self.description}: the ConfigMap {self.namespace}/{self.name} has no key {self.key!r} "
                f"(its keys: {keys})"
            )
        return data[self.key]

    async def _get(self) -> V1ConfigMap:
        return await self._call(
            "get",
            lambda api: api.read_namespaced_config_map(
                self.name, self.namespace, _request_timeout=self._timeout_s
            ),
        )

    async def _patch(self, body: dict[str, Any]) -> None:
        # The client sends a dict as a strategic merge patch: for a ConfigMap's data and annotations (plain
        # maps) that is a JSON merge patch, touching only the keys named.
        await self._call(
            "patch",
            lambda api: api.patch_namespaced_config_map(
                self.name, self.namespace, body, field_manager=FIELD_MANAGER, _request_timeout=self._timeout_s
            ),
        )

    async def _call(self, verb: str, call: Callable[[CoreV1Api], T]) -> T:
        api = await self._connect()
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return await asyncio.to_thread(call, api)
        except ApiException as exc:
            raise self._refusal(verb, exc, host=api.api_client.configuration.host) from None
        except HTTPError as exc:  # refused, reset, timed out, TLS: below the HTTP answer
            raise ConfigMapError(
                f"{self.description}: the API server at {api.api_client.configuration.host} did not answer "
                f"({type(exc).__name__}, timeout {self._timeout_s:g} s)"
            ) from None

    def _refusal(self, verb: str, exc: Any, *, host: str) -> Exception:
        """The ApiException of one call as what it means here; the server's own words, never the request."""
        status, said = int(exc.status or 0), _status_message(exc.body) or str(exc.reason or "")
        here = f"{self.description}: the ConfigMap {self.namespace}/{self.name}"
        if status == 409:
            return Conflict(f"{self.description} changed since it was read: nothing written ({said})")
        if status == 404:
            return ConfigMapError(
                f"{here} does not exist (create it first: kubectl apply -f deploy/k8s/routes-configmap.yaml, "
                f"or check --target configmap:NAMESPACE/NAME); the API server said: {said}"
            )
        if status == 403:
            return ConfigMapError(
                f"{here}: permission to {verb} it is missing. The controller's service account needs a "
                f"Role in namespace {self.namespace} with verbs get and patch on resource configmaps, "
                f"resourceNames [{self.name}] (deploy/k8s/rollout-controller.yaml); the API server said: "
                f"{said}"
            )
        if status == 401:
            return ConfigMapError(
                f"{here}: the API server at {host} refused the credentials (401 Unauthorized): check the "
                "service account token or the kubeconfig's user"
            )
        if status == 0:
            return ConfigMapError(f"{here}: cannot reach the API server at {host}: {said}")
        return ConfigMapError(f"{here}: {verb} answered {status}: {said}")

    async def _connect(self) -> CoreV1Api:
        async with self._connecting:
            if self._api is None:
                self._api = await asyncio.to_thread(self._new_api)
            return self._api

    def _new_api(self) -> CoreV1Api:
        try:
            from kubernetes import client
        except ImportError:
            message = f"{self.description}: the ConfigMap target needs `kubernetes`: {INSTALL}"
            raise ConfigMapError(message) from None
        api_client = self._api_client if self._api_client is not None else _api_client_from_environment()
        return client.CoreV1Api(api_client)


def _api_client_from_environment() -> Any:
    """The pod's service account (token re-read as it rotates), else KUBECONFIG or ~/.kube/config."""
    from kubernetes import client, config

    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]  # untyped in kubernetes
    except config.ConfigException as in_cluster:
        try:
            # persist_config=False: never write refreshed credentials back into the user's kubeconfig
            config.load_kube_config(client_configuration=configuration, persist_config=False)  # type: ignore[no-untyped-call]  # untyped in kubernetes
        except (config.ConfigException, OSError) as kubeconfig:
            raise ConfigMapError(
                f"no Kubernetes credentials: not in a pod with a service account ({in_cluster}), and no "
                f"usable kubeconfig in KUBECONFIG or ~/.kube/config ({kubeconfig})"
            ) from None
    return client.ApiClient(configuration)


def _status_message(body: object) -> str:
    """The `message` of a Kubernetes Status object, or the first 200 characters of another body."""
    if not isinstance(body, str | bytes) or not body:
        return ""
    try:
        status = json.loads(body)
    except ValueError:
        return (body.decode(errors="replace") if isinstance(body, bytes) else body)[:200]
    message = status.get("message") if isinstance(status, dict) else None
    return str(message) if message else ""
