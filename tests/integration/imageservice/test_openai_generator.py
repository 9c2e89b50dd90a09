"""The OpenAI generator through the real SDK against a fake OpenAI server on loopback."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import openai
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image
from structlog.testing import capture_logs

from imageservice.adapters.openai_generator import OpenAIGenerator, OpenAISettings
from imageservice.bootstrap import Overrides
from imageservice.entrypoints.http import create_app
from imageservice.settings import Secret, Settings
from tests.integration.imageservice.conftest import FakeOpenAI

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[[web.Application], Awaitable[Client]]
API_KEY = "sk-test-DO-NOT-LEAK-0123456789"
PAYLOAD = {"prompt": "a cat in a hat", "n": 2, "size": "256x256"}


@pytest.fixture
async def sdk(fake_openai: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(api_key=API_KEY, base_url=fake_openai.base_url, max_retries=0, timeout=5)
    yield client
    await client.close()


@pytest.fixture
def service_for(
    aiohttp_client: MakeClient, sdk: openai.AsyncOpenAI, tmp_path: Path
) -> Callable[..., Awaitable[Client]]:
    async def make(*, timeout_s: float = 5.0, max_retries: int = 1) -> Client:
        generator = OpenAIGenerator(
            sdk,
            OpenAISettings(
                model="gpt-image-test",
                timeout_s=timeout_s,
                max_retries=max_retries,
                max_retry_wait_s=5,
                backoff_s=0.01,
            ),
        )
        return await aiohttp_client(
            create_app(Settings(data_dir=tmp_path), overrides=Overrides(generator=generator))
        )

    return make


async def test_a_generation_through_the_sdk_sends_the_model_and_scales_to_the_contract_size(
    aiohttp_client: MakeClient, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    settings = Settings(
        generator="openai",
        data_dir=tmp_path,
        openai_base_url=fake_openai.base_url,
        openai_api_key=Secret(API_KEY),
        openai_model="gpt-image-test",
        openai_timeout_s=5,
        openai_max_retries=0,
    )
    client = await aiohttp_client(create_app(settings))
    with capture_logs() as logs:
        response = await client.post("/api/images", json=PAYLOAD, headers={"X-Request-ID": "trace-42"})

    assert response.status == 201
    body = await response.json()
    sent = {name.lower(): value for name, value in fake_openai.headers[0].items()}
    assert sent["x-client-request-id"] == "trace-42"
    assert fake_openai.requests == [
        {
            "prompt": "a cat in a hat",
            "model": "gpt-image-test",
            "n": 2,
            "size": "1024x1024",
            "output_format": "png",
        }
    ]
    assert sent["authorization"] == f"Bearer {API_KEY}"
    for image in body["images"]:
        data = await (await client.get(image["url"])).read()
        with Image.open(io.BytesIO(data)) as decoded:
            assert decoded.format == "PNG"
            assert decoded.size == (256, 256)
    assert any(log.get("openai_request_id") == "req_ok_123" for log in logs)
    assert API_KEY not in repr(logs)
    assert API_KEY not in await (await client.get("/metrics")).text()


@pytest.mark.parametrize(
    ("script", "status", "code", "upstream_calls"),
    [
        (["moderation"], 422, "content_policy", 1),
        (["quota"], 503, "generator_unavailable", 1),  # quota exhaustion is never retried
        (["rate_limit"], 429, "rate_limited", 2),  # retried once (max_retries=1), then handed on
        (["rate_limit_long"], 429, "rate_limited", 1),  # a 90 s wait is the caller's, not ours
        (["server_error"], 502, "generator_error", 2),
    ],
)
async def test_upstream_errors_map_to_the_contract(
    service_for: Callable[..., Awaitable[Client]],
    fake_openai: FakeOpenAI,
    script: list[str],
    status: int,
    code: str,
    upstream_calls: int,
) -> None:
    fake_openai.script = script
    client = await service_for()
    with capture_logs() as logs:
        response = await client.post("/api/images", json=PAYLOAD)

    assert response.status == status
    assert (await response.json())["error"]["code"] == code
    assert len(fake_openai.requests) == upstream_calls
    assert any(log.get("openai_request_id", "").startswith("req_") for log in logs)
    assert API_KEY not in repr(logs)
    assert API_KEY not in await response.text()
    metrics = await (await client.get("/metrics")).text()
    assert f'imageservice_generations_total{{generator="openai",outcome="{code}"}} 1.0' in metrics
    assert (await (await client.get("/api/images")).json())["items"] == []


async def test_a_rate_limit_carries_the_upstream_retry_after(
    service_for: Callable[..., Awaitable[Client]], fake_openai: FakeOpenAI
) -> None:
    fake_openai.script = ["rate_limit_long"]
    response = await (await service_for()).post("/api/images", json=PAYLOAD)
    assert response.headers["Retry-After"] == "90"


@pytest.mark.parametrize("first", ["rate_limit", "server_error"])
async def test_a_transient_failure_is_retried_and_then_succeeds(
    service_for: Callable[..., Awaitable[Client]], fake_openai: FakeOpenAI, first: str
) -> None:
    fake_openai.script = [first, "ok"]
    response = await (await service_for()).post("/api/images", json=PAYLOAD)

    assert response.status == 201
    assert len(fake_openai.requests) == 2


async def test_a_slow_upstream_is_a_generator_timeout(
    service_for: Callable[..., Awaitable[Client]], fake_openai: FakeOpenAI
) -> None:
    fake_openai.script = ["slow"]
    response = await (await service_for(timeout_s=0.3)).post("/api/images", json=PAYLOAD)

    assert response.status == 504
    assert (await response.json())["error"]["code"] == "generator_timeout"
    assert len(fake_openai.requests) == 1  # a timeout is not retried


async def test_an_unreachable_upstream_is_a_generator_error(
    aiohttp_client: MakeClient, tmp_path: Path
) -> None:
    probe = TestServer(web.Application(), host="127.0.0.1", port=0)
    await probe.start_server()
    dead_url = str(probe.make_url("/v1"))
    await probe.close()  # nothing listens there any more
    sdk = openai.AsyncOpenAI(api_key=API_KEY, base_url=dead_url, max_retries=0, timeout=2)
    generator = OpenAIGenerator(sdk, OpenAISettings(model="m", max_retries=1, backoff_s=0.01))
    client = await aiohttp_client(
        create_app(Settings(data_dir=tmp_path), overrides=Overrides(generator=generator))
    )

    response = await client.post("/api/images", json=PAYLOAD)

    assert response.status == 502
    assert (await response.json())["error"]["code"] == "generator_error"
    await sdk.close()
