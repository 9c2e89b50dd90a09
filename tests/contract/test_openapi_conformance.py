"""Every answer of the implementation is one the OpenAPI document declares, checked by openapi-core.

Each exchange below is validated as a whole: the status code must be declared for that operation,
and the body must match that response's schema and media type.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from strangler_common.contract import load_contract

Client = TestClient[Any, Any]
HOST = "http://127.0.0.1"


@cache
def openapi() -> OpenAPI:
    return OpenAPI.from_dict(load_contract())


async def exchange(
    client: Client,
    method: str,
    path: str,
    *,
    params: dict[str, str] | None = None,
    json_body: Any = None,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, str]:
    """Perform one request and validate the response against the document; return what came back."""
    response = await client.request(method, path, params=params, json=json_body, data=data, headers=headers)
    body = await response.read()
    if response.content_type == "image/png":
        # openapi-core reads binary bodies as text; check the declaration of the media type instead.
        declared = load_contract()["paths"]["/api/images/files/{name}"]["get"]["responses"]
        assert "image/png" in declared[str(response.status)]["content"]
        return response.status, body, response.content_type
    request = MockRequest(HOST, method.lower(), path, args=params or {}, headers=headers or {})
    openapi().validate_response(
        request,
        MockResponse(body, status_code=response.status, content_type=response.content_type),
    )
    return response.status, body, response.content_type


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"prompt": "a declared answer", "n": 2, "size": "256x256"}, 201),
        ({"prompt": ""}, 400),
        ({"prompt": "x", "size": "9x9"}, 400),
        ({"prompt": "x", "padding": "y" * (65 * 1024)}, 413),
    ],
)
async def test_post_answers_are_declared_by_the_document(
    image_api: Client, payload: dict[str, Any], status: int
) -> None:
    got, _, _ = await exchange(image_api, "POST", "/api/images", json_body=payload)

    assert got == status


async def test_non_json_and_idempotency_answers_are_declared_by_the_document(image_api: Client) -> None:
    text_plain = {"Content-Type": "text/plain"}
    assert (await exchange(image_api, "POST", "/api/images", data=b"hi", headers=text_plain))[0] == 415

    key = {"Idempotency-Key": "conformance"}
    first = {"prompt": "one", "size": "256x256"}
    assert (await exchange(image_api, "POST", "/api/images", json_body=first, headers=key))[0] == 201
    assert (await exchange(image_api, "POST", "/api/images", json_body=first, headers=key))[0] == 201
    other = {"prompt": "two", "size": "256x256"}
    assert (await exchange(image_api, "POST", "/api/images", json_body=other, headers=key))[0] == 422


async def test_read_answers_are_declared_by_the_document(image_api: Client) -> None:
    created = await image_api.post("/api/images", json={"prompt": "to read", "size": "256x256"})
    generation = await created.json()

    assert (await exchange(image_api, "GET", f"/api/images/{generation['id']}"))[0] == 200
    assert (await exchange(image_api, "GET", "/api/images/leg_nothing_here"))[0] == 404
    assert (await exchange(image_api, "GET", "/api/images", params={"limit": "5"}))[0] == 200
    assert (await exchange(image_api, "GET", "/api/images", params={"limit": "500"}))[0] == 400
    status, _, content_type = await exchange(image_api, "GET", generation["images"][0]["url"])
    assert (status, content_type) == (200, "image/png")
    assert (await exchange(image_api, "GET", "/api/images/files/missing.png"))[0] == 404
