"""POST /api/images: what a successful generation returns, and that the files are what it says."""

from __future__ import annotations

import hashlib
import io
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from PIL import Image

from strangler_common.contract import validate

Client = TestClient[Any, Any]


async def generate(client: Client, payload: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/api/images", json=payload)
    assert response.status == 201, await response.text()
    assert response.content_type == "application/json"
    body: dict[str, Any] = await response.json()
    validate("Generation", body)
    return body


async def test_a_prompt_alone_gives_one_1024_image_by_default(image_api: Client) -> None:
    before = int(time.time())
    body = await generate(image_api, {"prompt": "a lighthouse at dusk"})

    assert body["prompt"] == "a lighthouse at dusk"
    assert body["size"] == "1024x1024"
    assert len(body["images"]) == 1
    assert body["images"][0]["width"] == body["images"][0]["height"] == 1024
    assert before - 1 <= body["created"] <= int(time.time()) + 1


@pytest.mark.parametrize(
    ("n", "size"), [(1, "256x256"), (2, "256x256"), (4, "256x256"), (2, "512x512"), (1, "1024x1024")]
)
async def test_n_images_of_the_requested_size_are_returned(image_api: Client, n: int, size: str) -> None:
    body = await generate(image_api, {"prompt": "three red apples", "n": n, "size": size})

    width, height = (int(side) for side in size.split("x"))
    assert body["size"] == size
    assert len(body["images"]) == n
    assert len({image["name"] for image in body["images"]}) == n
    for image in body["images"]:
        assert (image["width"], image["height"]) == (width, height)
        assert image["content_type"] == "image/png"
        assert image["url"].startswith("/api/images/files/")


@pytest.mark.parametrize("size", ["256x256", "512x512"])
async def test_every_file_is_a_png_of_the_requested_size_matching_its_sha256_and_length(
    image_api: Client, size: str
) -> None:
    body = await generate(image_api, {"prompt": "a map of an imaginary island", "n": 2, "size": size})

    for image in body["images"]:
        response = await image_api.get(image["url"])
        assert response.status == 200
        assert response.content_type == "image/png"
        data = await response.read()
        assert len(data) == image["bytes"]
        assert hashlib.sha256(data).hexdigest() == image["sha256"]
        with Image.open(io.BytesIO(data)) as decoded:
            assert decoded.format == "PNG"
            assert decoded.size == (image["width"], image["height"])
            decoded.verify()


async def test_two_generations_get_distinct_ids_and_file_names(image_api: Client) -> None:
    first = await generate(image_api, {"prompt": "same prompt", "size": "256x256"})
    second = await generate(image_api, {"prompt": "same prompt", "size": "256x256"})

    assert first["id"] != second["id"]
    assert first["images"][0]["name"] != second["images"][0]["name"]


async def test_a_unicode_prompt_of_the_maximum_length_is_accepted_and_returned_verbatim(
    image_api: Client,
) -> None:
    prompt = ("ünïcødé 🦊 " * 100)[:1000]

    body = await generate(image_api, {"prompt": prompt, "size": "256x256"})

    assert body["prompt"] == prompt


async def test_n_written_as_a_whole_float_counts_as_that_integer(image_api: Client) -> None:
    # JSON does not tell 2 from 2.0, and neither does JSON Schema's "integer".
    body = await generate(image_api, {"prompt": "two", "n": 2.0, "size": "256x256"})

    assert len(body["images"]) == 2
