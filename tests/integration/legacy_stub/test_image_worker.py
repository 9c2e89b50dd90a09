"""The legacy image module is slow the way the monolith is: one worker, one generation at a time."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from legacy_stub.app import create_app
from legacy_stub.keys import METRICS
from legacy_stub.settings import Settings
from strangler_common.shadowmark import sign
from tests.integration.legacy_stub.probes import FailingOncePainter, GatedPainter, wait_until

SMALL = {"size": "256x256"}
NO_DELAY = Settings(image_delay_s=0.0)


def queue_depth(app: web.Application) -> float:
    value = app[METRICS].registry.get_sample_value("legacy_image_queue_depth")
    return value if value is not None else 0.0


async def test_concurrent_generations_are_painted_one_at_a_time_in_arrival_order(aiohttp_client: Any) -> None:
    painter = GatedPainter()
    app = create_app(Settings(image_delay_s=0.0), painter=painter)
    client: TestClient[Any, Any] = await aiohttp_client(app)
    finished: list[str] = []

    async def post(prompt: str) -> None:
        response = await client.post("/api/images", json={"prompt": prompt, **SMALL})
        assert response.status == 201
        finished.append((await response.json())["prompt"])

    first = asyncio.create_task(post("p0"))
    await wait_until(lambda: painter.started == ["p0"], what="p0 reaches the worker")
    second = asyncio.create_task(post("p1"))
    await wait_until(lambda: queue_depth(app) == 1, what="p1 waits in the queue")
    third = asyncio.create_task(post("p2"))
    await wait_until(lambda: queue_depth(app) == 2, what="p2 waits in the queue")
    assert painter.started == ["p0"]

    painter.gate("p2").set()  # p2 may not overtake p1, even though it could finish at once
    painter.gate("p0").set()
    await wait_until(lambda: painter.started == ["p0", "p1"], what="p1 reaches the worker")
    assert painter.finished == ["p0"]
    painter.gate("p1").set()
    await asyncio.wait_for(asyncio.gather(first, second, third), timeout=10)

    assert painter.max_in_flight == 1
    assert painter.started == painter.finished == ["p0", "p1", "p2"]
    assert finished == ["p0", "p1", "p2"]


async def test_the_n_images_of_one_generation_are_also_painted_one_after_another(aiohttp_client: Any) -> None:
    painter = GatedPainter()
    painter.gate("four").set()
    client: TestClient[Any, Any] = await aiohttp_client(create_app(NO_DELAY, painter=painter))

    response = await client.post("/api/images", json={"prompt": "four", "n": 4, **SMALL})

    assert response.status == 201
    assert painter.max_in_flight == 1
    assert len(painter.finished) == 4


async def test_a_duplicate_key_while_the_first_is_generating_is_409_in_progress(aiohttp_client: Any) -> None:
    painter = GatedPainter()
    client: TestClient[Any, Any] = await aiohttp_client(create_app(NO_DELAY, painter=painter))
    payload = {"prompt": "held", **SMALL}
    headers = {"Idempotency-Key": "k-409"}

    first = asyncio.create_task(client.post("/api/images", json=payload, headers=headers))
    await wait_until(lambda: painter.started == ["held"], what="the first request reaches the worker")

    duplicate = await client.post("/api/images", json=payload, headers=headers)
    assert duplicate.status == 409
    assert (await duplicate.json())["error"]["code"] == "in_progress"
    other_body = await client.post("/api/images", json={"prompt": "other", **SMALL}, headers=headers)
    assert other_body.status == 422

    painter.gate("held").set()
    original = await asyncio.wait_for(first, timeout=10)
    assert original.status == 201
    replay = await client.post("/api/images", json=payload, headers=headers)
    assert replay.status == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert await replay.json() == await original.json()
    assert painter.started == ["held"]


async def test_a_failed_generation_releases_its_key_for_a_retry(aiohttp_client: Any) -> None:
    painter = FailingOncePainter()
    client: TestClient[Any, Any] = await aiohttp_client(create_app(NO_DELAY, painter=painter))
    payload = {"prompt": "try twice", **SMALL}
    headers = {"Idempotency-Key": "k-retry"}

    failed = await client.post("/api/images", json=payload, headers=headers)
    assert failed.status == 500
    assert (await failed.json())["error"]["code"] == "internal_error"

    retried = await client.post("/api/images", json=payload, headers=headers)
    assert retried.status == 201
    assert "Idempotent-Replayed" not in retried.headers
    assert (await (await client.get("/api/images")).json())["items"][0]["prompt"] == "try twice"


async def test_a_full_queue_answers_503_overloaded_with_retry_after(aiohttp_client: Any) -> None:
    painter = GatedPainter()
    app = create_app(Settings(image_delay_s=0.0, max_queue=1), painter=painter)
    client: TestClient[Any, Any] = await aiohttp_client(app)

    held = asyncio.create_task(client.post("/api/images", json={"prompt": "a", **SMALL}))
    await wait_until(lambda: painter.started == ["a"], what="a reaches the worker")
    queued = asyncio.create_task(client.post("/api/images", json={"prompt": "b", **SMALL}))
    await wait_until(lambda: queue_depth(app) == 1, what="b waits in the queue")

    refused = await client.post("/api/images", json={"prompt": "c", **SMALL})
    assert refused.status == 503
    assert refused.headers["Retry-After"] == "5"
    assert (await refused.json())["error"]["code"] == "overloaded"

    painter.gate("a").set()
    painter.gate("b").set()
    responses = await asyncio.wait_for(asyncio.gather(held, queued), timeout=10)
    assert [r.status for r in responses] == [201, 201]


async def test_the_default_painter_waits_the_configured_delay_per_image_without_blocking_other_routes(
    aiohttp_client: Any,
) -> None:
    # A long delay holds the worker; the storefront keeps answering meanwhile (no timing assertion).
    app = create_app(Settings(image_delay_s=30.0))
    client: TestClient[Any, Any] = await aiohttp_client(app)
    pending = asyncio.create_task(client.post("/api/images", json={"prompt": "slow", **SMALL}))
    await wait_until(
        lambda: app[METRICS].registry.get_sample_value("legacy_image_generations_in_progress") == 1,
        what="the slow generation starts",
    )

    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/api/catalog")).status == 200
    assert not pending.done()
    pending.cancel()


async def test_metrics_count_generations_by_outcome(aiohttp_client: Any) -> None:
    key = b"a-key-for-this-test-0123456789abcdef"
    app = create_app(Settings(image_delay_s=0.0, shadow_key=key))
    client: TestClient[Any, Any] = await aiohttp_client(app)
    await client.post("/api/images", json={"prompt": "kept", "n": 2, **SMALL})
    shadow = {"X-Request-ID": "copy-1", "X-Strangler-Shadow": sign(key, "copy-1", now=time.time())}
    await client.post("/api/images", json={"prompt": "mirrored", **SMALL}, headers=shadow)

    response = await client.get("/metrics")

    assert response.status == 200
    text = await response.text()
    assert 'legacy_image_generations_total{outcome="stored"} 1.0' in text
    assert 'legacy_image_generations_total{outcome="shadow"} 1.0' in text
    assert "legacy_images_painted_total 3.0" in text
    assert "legacy_image_queue_depth 0.0" in text
    assert "legacy_image_generation_seconds_count 2.0" in text
