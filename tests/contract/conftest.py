from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.contract.implementations import IMPLEMENTATIONS


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
async def image_api(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient[web.Request, web.Application]]],
) -> TestClient[web.Request, web.Application]:
    """A client for one implementation of the image API contract (the suite runs once per implementation)."""
    return await aiohttp_client(IMPLEMENTATIONS[request.param](tmp_path))
