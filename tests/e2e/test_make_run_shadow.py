"""`make run` with the shipped routes.yaml shadows image generation from the first request on."""

from __future__ import annotations

import json
import time

from proxy.routing.bucketing import in_rollout
from tests.e2e.conftest import Stack
from tests.e2e.test_make_run import fetch, proxy_metric

ROLLOUT_PERCENT = 10  # the shipped routes.yaml


def a_user_served_by_the_monolith() -> str:
    return next(
        user for user in (f"carol-{i}" for i in range(1000))
        if not in_rollout(user, percent=ROLLOUT_PERCENT, salt="images")
    )  # fmt: skip


def test_the_first_generation_through_the_proxy_is_compared_with_the_new_service(stack: Stack) -> None:
    status, _, body = fetch(
        f"{stack.proxy}/api/images",
        method="POST",
        body=json.dumps({"prompt": "a lighthouse at dusk", "size": "256x256"}).encode(),
        headers={"Content-Type": "application/json", "X-User-Id": a_user_served_by_the_monolith()},
    )
    assert status == 201
    assert json.loads(body)["id"].startswith("leg_")  # the monolith answered the client

    compared = 0.0
    give_up = time.monotonic() + 20
    while compared < 1 and time.monotonic() < give_up:
        compared = proxy_metric(stack, "strangler_shadow_requests_total", route="images", outcome="compared")
        time.sleep(0.1)

    assert compared == 1
    assert proxy_metric(stack, "strangler_shadow_comparisons_total", route="images", result="match") == 1
    _, _, listed = fetch(f"{stack.admin}/shadow/mismatches?route=images",
                         headers={"Authorization": "Bearer e2e-token"})  # fmt: skip
    assert json.loads(listed)["mismatches"] == []
