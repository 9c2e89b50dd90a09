"""The signed shadow marker on the real stack (honcho, three processes, one generated key): a forged
marker sent straight to a service is a normal request; one sent through the proxy never arrives; the
proxy's own signed copy is still a shadow copy."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import uuid

import pytest

from proxy.routing.bucketing import in_rollout
from tests.e2e.conftest import Stack
from tests.e2e.test_make_run import fetch, proxy_metric

JSON = {"Content-Type": "application/json"}


def post(url: str, prompt: str, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    body = json.dumps({"prompt": prompt, "size": "256x256"}).encode()
    try:
        status, _, answer = fetch(f"{url}/api/images", method="POST", body=body, headers={**JSON, **headers})
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    return status, json.loads(answer)


def markers(url: str, prefix: str) -> dict[str, float]:
    _, _, text = fetch(f"{url}/metrics")
    found: dict[str, float] = {}
    for line in text.decode().splitlines():
        match = re.match(rf'{prefix}_shadow_markers_total{{verdict="(\w+)"}} (\S+)', line)
        if match:
            found[match.group(1)] = float(match.group(2))
    return found


def a_monolith_user() -> str:
    return next(u for u in (f"dora-{i}" for i in range(1000)) if not in_rollout(u, percent=10, salt="images"))


@pytest.mark.parametrize("service", ["legacy", "imageservice"])
def test_a_forged_marker_sent_straight_to_a_service_is_stored_and_claims_its_key(
    stack: Stack, service: str
) -> None:
    url = getattr(stack, service)
    key = f"forged-{uuid.uuid4().hex}"
    forged = {"X-Strangler-Shadow": "1", "X-Request-ID": uuid.uuid4().hex, "Idempotency-Key": key}

    status, created = post(url, "a forged copy", forged)
    assert status == 201
    assert fetch(f"{url}/api/images/{created['id']}")[0] == 200  # stored

    status, refused = post(url, "another body, same key", forged)
    assert status == 422  # the key was claimed like any other
    assert refused["error"]["code"] == "idempotency_key_reused"  # type: ignore[index]
    prefix = "legacy" if service == "legacy" else "imageservice"
    assert markers(url, prefix).get("unsigned", 0) >= 2


def test_a_copy_signed_by_the_proxy_is_still_a_shadow_copy_and_a_clients_marker_never_arrives(
    stack: Stack,
) -> None:
    before_legacy = markers(stack.legacy, "legacy")
    before_service = markers(stack.imageservice, "imageservice")
    compared_before = proxy_metric(
        stack, "strangler_shadow_requests_total", route="images", outcome="compared"
    )
    prompt = f"a mirrored lighthouse {uuid.uuid4().hex}"

    status, created = post(stack.proxy, prompt, {"X-User-Id": a_monolith_user(), "X-Strangler-Shadow": "1",
                                                  "x-strangler-shadow": "1"})  # fmt: skip
    assert status == 201
    assert str(created["id"]).startswith("leg_")
    give_up = time.monotonic() + 20
    while time.monotonic() < give_up:
        compared = proxy_metric(stack, "strangler_shadow_requests_total", route="images", outcome="compared")
        if compared > compared_before:
            break
        time.sleep(0.1)

    assert compared == compared_before + 1
    after_service = markers(stack.imageservice, "imageservice")
    assert after_service.get("signed", 0) == before_service.get("signed", 0) + 1
    assert after_service.get("unsigned", 0) == before_service.get("unsigned", 0)
    assert markers(stack.legacy, "legacy") == before_legacy  # the client's marker was stripped
    _, _, listed = fetch(f"{stack.imageservice}/api/images?limit=100")
    assert prompt not in [item["prompt"] for item in json.loads(listed)["items"]]  # the copy was not stored
    _, _, kept = fetch(f"{stack.legacy}/api/images/{created['id']}")
    assert json.loads(kept)["prompt"] == prompt
