"""POST /api/images refusals: every bad request gets the right status, a JSON error, and stores nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from strangler_common.contract import validate

Client = TestClient[Any, Any]


async def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    body: dict[str, Any] = await response.json()
    validate("Error", body)
    error: dict[str, Any] = body["error"]
    return error


async def assert_nothing_stored(client: Client) -> None:
    response = await client.get("/api/images")
    assert (await response.json())["items"] == []


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x" * 1001}, "prompt"),
        ({"prompt": 42}, "prompt"),
        ({"prompt": None}, "prompt"),
        ({"prompt": "ok", "n": 0}, "n"),
        ({"prompt": "ok", "n": 5}, "n"),
        ({"prompt": "ok", "n": "2"}, "n"),
        ({"prompt": "ok", "n": True}, "n"),
        ({"prompt": "ok", "n": 1.5}, "n"),
        ({"prompt": "ok", "size": "300x300"}, "size"),
        ({"prompt": "ok", "size": 256}, "size"),
        ({"prompt": "ok", "style": "vivid"}, "style"),
    ],
)
async def test_an_invalid_field_is_refused_with_400_naming_the_field(
    image_api: Client, payload: dict[str, Any], field: str
) -> None:
    error = await error_of(await image_api.post("/api/images", json=payload), 400)

    assert error["code"] == "invalid_request"
    assert field in error["message"]
    await assert_nothing_stored(image_api)


@pytest.mark.parametrize("body", [b"[]", b'"a prompt"', b"null", b"42"])
async def test_a_json_body_that_is_not_an_object_is_refused_with_400(image_api: Client, body: bytes) -> None:
    response = await image_api.post("/api/images", data=body, headers={"Content-Type": "application/json"})

    assert (await error_of(response, 400))["code"] == "invalid_request"


@pytest.mark.parametrize("body", [b'{"prompt": "unterminated', b"", b"\xff\xfe{}", b"{'prompt': 'x'}"])
async def test_malformed_json_is_refused_with_400(image_api: Client, body: bytes) -> None:
    response = await image_api.post("/api/images", data=body, headers={"Content-Type": "application/json"})

    assert (await error_of(response, 400))["code"] == "invalid_request"
    await assert_nothing_stored(image_api)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_a_body_that_is_not_declared_json_is_refused_with_415(
    image_api: Client, content_type: str | None
) -> None:
    body = json.dumps({"prompt": "a cat"}).encode()
    headers = {"Content-Type": content_type} if content_type else {}
    # aiohttp would add application/octet-stream to a bytes body without a content type.
    response = await image_api.post("/api/images", data=body, headers=headers)

    error = await error_of(response, 415)
    assert error["message"]
    await assert_nothing_stored(image_api)


async def test_a_body_over_64_kib_is_refused_with_413_payload_too_large(image_api: Client) -> None:
    body = json.dumps({"prompt": "a cat", "padding": "x" * (64 * 1024)}).encode()

    response = await image_api.post("/api/images", data=body, headers={"Content-Type": "application/json"})

    assert (await error_of(response, 413))["code"] == "payload_too_large"
    await assert_nothing_stored(image_api)


async def test_a_body_just_under_64_kib_is_not_refused_for_its_size(image_api: Client) -> None:
    # An over-long prompt inside a body under the limit is a 400 about the prompt, not a 413.
    body = json.dumps({"prompt": "x" * (60 * 1024)}).encode()

    response = await image_api.post("/api/images", data=body, headers={"Content-Type": "application/json"})

    error = await error_of(response, 400)
    assert "prompt" in error["message"]
