"""Fixtures for the image service's integration tests: a moto server and a fake OpenAI, both real
servers on 127.0.0.1, port 0."""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from imageservice.adapters.aws import AwsClients, AwsSettings, init_aws
from imageservice.adapters.dynamodb_repo import DynamoDbRepository
from imageservice.adapters.fs_blobs import FsBlobStore
from imageservice.adapters.local_generator import paint
from imageservice.adapters.s3_blobs import S3BlobStore
from imageservice.adapters.sqlite_repo import SqliteRepository
from imageservice.domain.model import Size
from imageservice.domain.ports import BlobStore


@pytest.fixture
def aws_settings(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsSettings]:
    """A clean moto (reset before each test) with the bucket and table created by init-aws."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    reset = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")  # noqa: S310 - loopback
    with urllib.request.urlopen(reset, timeout=10) as response:  # noqa: S310 - loopback moto only
        assert response.status == 200
    settings = AwsSettings(
        bucket="test-images", table="test-imageservice", endpoint_url=moto_endpoint, max_workers=4
    )
    clients = AwsClients(settings)
    init_aws(clients)
    clients.close()
    return settings


@pytest.fixture
def aws_clients(aws_settings: AwsSettings) -> Iterator[AwsClients]:
    clients = AwsClients(aws_settings)
    yield clients
    clients.close()


# ------------------------------------------------------------------ a fake OpenAI


def png_b64(seed: int = 0) -> str:
    """What GPT image models return: a 1024x1024 PNG, base64 encoded."""
    return base64.b64encode(paint("fake openai", seed, Size(1024, 1024))).decode()


def openai_error(
    status: int, message: str, type_: str, code: str | None, headers: dict[str, str] | None = None
) -> web.Response:
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return web.json_response(
        body, status=status, headers={"x-request-id": f"req_{status}", **(headers or {})}
    )


def ok(n: int) -> web.Response:
    body = {
        "created": 1_800_000_000,
        "data": [{"b64_json": png_b64(seed=i)} for i in range(n)],
        "output_format": "png",
        "size": "1024x1024",
        "quality": "medium",
        "usage": {
            "input_tokens": 10,
            "input_tokens_details": {"image_tokens": 0, "text_tokens": 10},
            "output_tokens": 1056,
            "total_tokens": 1066,
        },
    }
    return web.json_response(body, headers={"x-request-id": "req_ok_123"})


SCENARIOS: dict[str, Callable[[int], web.Response]] = {
    "ok": ok,
    "moderation": lambda n: openai_error(
        400,
        "Your request was rejected by the safety system.",
        "image_generation_user_error",
        "moderation_blocked",
    ),
    "rate_limit": lambda n: openai_error(
        429,
        "Rate limit reached for images per minute.",
        "requests",
        "rate_limit_exceeded",
        {"retry-after-ms": "20", "retry-after": "1", "x-ratelimit-remaining-requests": "0"},
    ),
    "rate_limit_long": lambda n: openai_error(
        429,
        "Rate limit reached for images per minute.",
        "requests",
        "rate_limit_exceeded",
        {"retry-after": "90"},
    ),
    "quota": lambda n: openai_error(
        429,
        "You exceeded your current quota, please check your plan and billing details.",
        "insufficient_quota",
        "insufficient_quota",
    ),
    "server_error": lambda n: openai_error(
        500, "The server had an error while processing your request.", "server_error", None
    ),
}


@dataclass
class FakeOpenAI:
    """Answers POST /v1/images/generations with the next scripted scenario (the last one repeats)."""

    script: list[str] = field(default_factory=lambda: ["ok"])
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    base_url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        payload = await request.json()
        self.requests.append(payload)
        self.headers.append(dict(request.headers))
        scenario = self.script[min(len(self.requests) - 1, len(self.script) - 1)]
        if scenario == "slow":
            await asyncio.sleep(30)  # longer than any client timeout used in the tests
            scenario = "ok"
        return SCENARIOS[scenario](int(payload.get("n", 1)))


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI()
    app = web.Application()
    app.router.add_post("/v1/images/generations", fake.handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    fake.base_url = str(server.make_url("/v1"))
    yield fake
    await server.close()


def body_of(response_text: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(response_text)
    return loaded


SqliteOrDynamo = SqliteRepository | DynamoDbRepository


@dataclass
class Backend:
    """One real storage backend (local files + SQLite, or S3 + DynamoDB on moto) for a test."""

    name: str
    blobs: BlobStore
    repository: SqliteOrDynamo


@pytest.fixture(params=["local", "aws"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "local":
        blobs = FsBlobStore(tmp_path / "images")
        blobs.ensure()
        repository = SqliteRepository(tmp_path / "meta.sqlite3")
        await repository.open()
        yield Backend("local", blobs, repository)
        await repository.close()
    else:
        clients = request.getfixturevalue("aws_clients")
        yield Backend("aws", S3BlobStore(clients), DynamoDbRepository(clients))
