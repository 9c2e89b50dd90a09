"""Schemathesis against the image service, driven by its OpenAPI document (strangler_common/contracts):
generated requests, valid and not, never get a 5xx, and every answer is one the document declares."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from aiohttp import web
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from strangler_common.contract import load_contract
from tests.contract.implementations import imageservice_app
from tests.fuzz.conftest import FUZZ

SCHEMA = schemathesis.openapi.from_dict(load_contract())
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real image service app (local generator and storage), served from its own thread and loop."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop = asyncio.Event()
    bound: list[str] = []

    async def serve(data_dir: Path) -> None:
        runner = web.AppRunner(imageservice_app(data_dir))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        bound.append(f"http://127.0.0.1:{runner.addresses[0][1]}")
        ready.set()
        await stop.wait()
        await runner.cleanup()

    thread = threading.Thread(
        target=loop.run_until_complete, args=(serve(tmp_path_factory.mktemp("openapi")),), daemon=True
    )
    thread.start()
    assert ready.wait(15)
    yield bound[0]
    loop.call_soon_threadsafe(stop.set)
    thread.join(15)
    loop.close()


@SCHEMA.parametrize()
@FUZZ
def test_the_image_service_answers_every_generated_request_as_its_contract_declares(
    case: schemathesis.Case, base_url: str
) -> None:
    case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=30)
