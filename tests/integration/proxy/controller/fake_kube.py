"""A fake Kubernetes API server for ConfigMaps, a real aiohttp server on loopback: the real client talks
to it over HTTP exactly as to a cluster.

It speaks the part of the core/v1 API the rollout controller uses, with the API server's semantics:
GET and PATCH /api/v1/namespaces/{namespace}/configmaps/{name}; a bearer token checked on every call
(401 otherwise); RBAC as a set of granted verbs (403 for any other, worded as the API server words it);
404 for an unknown ConfigMap; PATCH as application/merge-patch+json or
application/strategic-merge-patch+json (the same merge for a ConfigMap's plain maps; any other patch
type is 415); a resourceVersion in the patch is a precondition (409 Conflict when stale); every change
bumps the resourceVersion; a data value that is not a string is 422. Every error body is a v1 Status.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["FakeKube", "Seen", "merge_patch"]

PATH = "/api/v1/namespaces/{namespace}/configmaps/{name}"
PATCH_TYPES = ("application/merge-patch+json", "application/strategic-merge-patch+json")
ACCOUNT = "system:serviceaccount:{namespace}:strangler-rollout"


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    content_type: str
    query: dict[str, str]
    body: Any


@dataclass
class FakeKube:
    token: str
    url: str = ""  # set once the server listens
    verbs: set[str] = field(default_factory=lambda: {"get", "patch", "update"})  # what the Role grants
    objects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    # Runs once, right after the next GET is answered: someone else's edit between a read and a write.
    after_next_get: Callable[[], None] | None = None
    _revision: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))

    # ------------------------------------------------------------ state, as kubectl would change it

    def create(
        self,
        namespace: str,
        name: str,
        data: dict[str, str],
        *,
        annotations: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
    ) -> None:
        metadata: dict[str, Any] = {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{namespace}-{name}",
            "creationTimestamp": "2026-12-01T10:00:00Z",
            "resourceVersion": str(next(self._revision)),
        }
        if annotations:
            metadata["annotations"] = dict(annotations)
        if labels:
            metadata["labels"] = dict(labels)
        self.objects[namespace, name] = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": metadata,
                                         "data": dict(data)}  # fmt: skip

    def edit(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        """An operator's change (kubectl edit / annotate): merged in, resourceVersion bumped."""
        changed = merge_patch(self.objects[namespace, name], patch)
        changed["metadata"]["resourceVersion"] = str(next(self._revision))
        self.objects[namespace, name] = changed

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.objects[namespace, name])

    def patches(self) -> list[Seen]:
        return [s for s in self.seen if s.method == "PATCH"]

    # ------------------------------------------------------------ the API

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", PATH, self._configmap)
        return app

    async def _configmap(self, request: web.Request) -> web.StreamResponse:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        body = await request.json() if request.can_read_body else None
        self.seen.append(Seen(request.method, request.path, request.content_type, dict(request.query), body))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return status(401, "Unauthorized", "Unauthorized")
        verb = {"GET": "get", "PATCH": "patch", "PUT": "update"}.get(request.method)
        if verb is None:
            return status(405, "MethodNotAllowed", f"the server does not allow this method on {name}")
        if verb not in self.verbs:
            return status(
                403, "Forbidden",
                f'configmaps "{name}" is forbidden: User "{ACCOUNT.format(namespace=namespace)}" cannot '
                f'{verb} resource "configmaps" in API group "" in the namespace "{namespace}"',
                name=name,
            )  # fmt: skip
        if (namespace, name) not in self.objects:
            return status(404, "NotFound", f'configmaps "{name}" not found', name=name)
        if verb == "get":
            response = web.json_response(self.get(namespace, name))
            hook, self.after_next_get = self.after_next_get, None
            if hook is not None:
                hook()
            return response
        if verb == "patch":
            return self._patch(namespace, name, request.content_type, body)
        return status(405, "MethodNotAllowed", "this fake speaks GET and PATCH only")

    def _patch(self, namespace: str, name: str, content_type: str, body: Any) -> web.Response:
        if content_type not in PATCH_TYPES:
            message = f"the body of the request was in an unknown format: {content_type!r}; accepted: "
            message += ", ".join(PATCH_TYPES)
            return status(415, "UnsupportedMediaType", message)
        if not isinstance(body, dict):
            return status(400, "BadRequest", "the patch is not a JSON object")
        current = self.objects[namespace, name]
        wanted = (body.get("metadata") or {}).get("resourceVersion")
        if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
            return status(
                409, "Conflict",
                f'Operation cannot be fulfilled on configmaps "{name}": the object has been modified; '
                "please apply your changes to the latest version and try again",
                name=name,
            )  # fmt: skip
        changed = merge_patch(current, body)
        if not all(isinstance(v, str) for v in (changed.get("data") or {}).values()):
            message = f'ConfigMap "{name}" is invalid: data: values must be strings'
            return status(422, "Invalid", message, name=name)
        changed["metadata"].update({k: current["metadata"][k] for k in ("name", "namespace", "uid")})
        changed["metadata"]["resourceVersion"] = str(next(self._revision))
        self.objects[namespace, name] = changed
        return web.json_response(copy.deepcopy(changed))


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, null removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def status(code: int, reason: str, message: str, *, name: str | None = None) -> web.Response:
    """A v1 Status, as the API server answers every error."""
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": message, "reason": reason, "code": code}  # fmt: skip
    if name is not None:
        body["details"] = {"name": name, "kind": "configmaps"}
    return web.json_response(body, status=code)
