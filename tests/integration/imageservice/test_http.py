"""The aiohttp entry point end to end, on loopback, with real local storage (and once with AWS)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from imageservice.adapters.aws import AwsSettings
from imageservice.bootstrap import Overrides
from imageservice.entrypoints.http import CONTAINER, create_app
from imageservice.settings import Settings
from strangler_common.contract import validate
from tests.unit.imageservice.fakes import FakeGenerator

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[[web.Application], Awaitable[Client]]
METRICS = (
    "imageservice_generations_total",
    "imageservice_generation_duration_seconds",
    "imageservice_images_total",
    "imageservice_compensations_total",
    "imageservice_idempotent_replays_total",
    "imageservice_in_flight",
    "imageservice_rejected_total",
    "imageservice_key_releases_total",
    "imageservice_unsettled_keys",
    "imageservice_abandoned_keys_total",
    "imageservice_uncertain_commits_total",
)


@pytest.fixture
async def client(aiohttp_client: MakeClient, tmp_path: Path) -> Client:
    return await aiohttp_client(create_app(Settings(data_dir=tmp_path)))


async def test_a_generation_is_served_back_as_json_and_png_files(client: Client, tmp_path: Path) -> None:
    response = await client.post(
        "/api/images",
        json={"prompt": "a red fox", "n": 2, "size": "256x256"},
        headers={"X-Request-ID": "req-abc"},
    )
    assert response.status == 201
    assert response.headers["X-Request-ID"] == "req-abc"
    body = await response.json()
    validate("Generation", body)
    assert body["id"].startswith("img_")

    for image in body["images"]:
        assert image["url"] == f"/api/images/files/{image['name']}"
        file = await client.get(image["url"])
        assert file.content_type == "image/png"
        assert hashlib.sha256(await file.read()).hexdigest() == image["sha256"]
        assert (tmp_path / "images" / image["name"]).is_file()
    assert await (await client.get(f"/api/images/{body['id']}")).json() == body
    assert (await (await client.get("/api/images?limit=1")).json())["items"] == [body]


async def test_every_metric_of_the_contract_is_exported(client: Client) -> None:
    await client.post("/api/images", json={"prompt": "metrics", "size": "256x256"})
    text = await (await client.get("/metrics")).text()

    for name in METRICS:
        assert name in text
    assert 'imageservice_generations_total{generator="local",outcome="ok"} 1.0' in text
    assert "imageservice_images_total 1.0" in text


async def test_a_replay_is_marked_and_counted(client: Client) -> None:
    headers = {"Idempotency-Key": "abc"}
    first = await client.post("/api/images", json={"prompt": "p", "size": "256x256"}, headers=headers)
    again = await client.post("/api/images", json={"prompt": "p", "size": "256x256"}, headers=headers)

    assert first.status == again.status == 201
    assert await first.json() == await again.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "imageservice_idempotent_replays_total 1.0" in await (await client.get("/metrics")).text()


@pytest.mark.parametrize(
    ("kwargs", "status", "code", "mentions"),
    [
        (
            {"data": b'{"prompt": "x"}', "headers": {"Content-Type": "text/plain"}},
            415,
            "unsupported_media_type",
            "JSON",
        ),
        (
            {"data": b"{not json", "headers": {"Content-Type": "application/json"}},
            400,
            "invalid_request",
            "JSON",
        ),
        ({"json": {"prompt": "x", "size": "9x9"}}, 400, "invalid_request", "size"),
        (
            {"json": {"prompt": "x"}, "headers": {"Idempotency-Key": "k" * 256}},
            400,
            "invalid_request",
            "Idempotency-Key",
        ),
        (
            {"data": b"x" * (64 * 1024 + 1), "headers": {"Content-Type": "application/json"}},
            413,
            "payload_too_large",
            "bytes",
        ),
    ],
)
async def test_bad_requests_get_the_contract_error(
    client: Client, kwargs: dict[str, Any], status: int, code: str, mentions: str
) -> None:
    response = await client.post("/api/images", **kwargs)

    assert response.status == status
    error = (await response.json())["error"]
    assert error["code"] == code
    assert mentions in error["message"]
    assert (
        f'imageservice_rejected_total{{reason="{code}"}} 1.0' in await (await client.get("/metrics")).text()
    )


async def test_a_chunked_body_over_the_limit_is_refused(client: Client) -> None:
    async def chunks() -> Any:
        for _ in range(20):
            yield b"x" * 8192

    response = await client.post("/api/images", data=chunks(), headers={"Content-Type": "application/json"})

    assert response.status == 413
    assert (await response.json())["error"]["code"] == "payload_too_large"


async def test_a_bad_list_limit_is_refused_naming_limit(client: Client) -> None:
    response = await client.get("/api/images?limit=500")
    assert response.status == 400
    assert "limit" in (await response.json())["error"]["message"]


async def test_a_full_queue_answers_503_overloaded_with_retry_after(
    aiohttp_client: MakeClient, tmp_path: Path
) -> None:
    gate = asyncio.Event()
    generator = FakeGenerator(gate=gate)
    settings = Settings(data_dir=tmp_path, max_concurrency=1, max_queue=1, retry_after_s=3)
    client = await aiohttp_client(create_app(settings, overrides=Overrides(generator=generator)))
    payload = {"prompt": "busy", "size": "256x256"}
    running = asyncio.create_task(client.post("/api/images", json=payload))
    await asyncio.wait_for(generator.started.wait(), 10)
    queued = asyncio.create_task(client.post("/api/images", json=payload))
    limiter = client.app[CONTAINER].service.limiter
    for _ in range(500):  # bounded: wait until the second request holds the queue's only place
        if limiter.admitted == 2:
            break
        await asyncio.sleep(0.01)
    assert limiter.admitted == 2

    refused = await client.post("/api/images", json=payload)

    assert refused.status == 503
    assert refused.headers["Retry-After"] == "3"
    assert (await refused.json())["error"]["code"] == "overloaded"
    gate.set()
    assert (await running).status == 201
    assert (await queued).status == 201


async def test_the_aws_backend_serves_the_same_contract(
    aiohttp_client: MakeClient, aws_settings: AwsSettings, tmp_path: Path
) -> None:
    settings = Settings(
        storage="aws",
        s3_bucket=aws_settings.bucket,
        dynamodb_table=aws_settings.table,
        aws_endpoint_url=aws_settings.endpoint_url,
        data_dir=tmp_path,
    )
    client = await aiohttp_client(create_app(settings))

    created = await client.post(
        "/api/images", json={"prompt": "cloudy", "size": "256x256"}, headers={"Idempotency-Key": "aws-1"}
    )
    assert created.status == 201
    body = await created.json()
    file = await client.get(body["images"][0]["url"])
    assert hashlib.sha256(await file.read()).hexdigest() == body["images"][0]["sha256"]
    assert await (await client.get(f"/api/images/{body['id']}")).json() == body
    assert (await (await client.get("/api/images")).json())["items"] == [body]
    assert not any(tmp_path.iterdir())  # nothing written locally


async def test_generations_run_concurrently_up_to_the_limit(
    aiohttp_client: MakeClient, tmp_path: Path
) -> None:
    gate = asyncio.Event()
    generator = FakeGenerator(gate=gate)
    settings = Settings(data_dir=tmp_path, max_concurrency=3, max_queue=10)
    client = await aiohttp_client(create_app(settings, overrides=Overrides(generator=generator)))
    payload = {"prompt": "together", "size": "256x256"}

    requests = [asyncio.create_task(client.post("/api/images", json=payload)) for _ in range(5)]
    for _ in range(500):  # bounded: until three run and two wait
        if generator.running == 3 and client.app[CONTAINER].service.limiter.admitted == 5:
            break
        await asyncio.sleep(0.01)
    running_before_release = generator.running
    gate.set()
    responses = await asyncio.gather(*requests)

    assert running_before_release == 3
    assert generator.max_running == 3
    assert [response.status for response in responses] == [201] * 5
