"""A fake Prometheus on loopback for the controller's tests, and the client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from proxy.controller.prometheus import Prometheus
from tests.unit.proxy.controller.fake_prometheus import FakePrometheus
from tests.unit.proxy.controller.rig import ROUTES, Clock, Rig


@pytest.fixture
def fake() -> FakePrometheus:
    return FakePrometheus()


@pytest.fixture
async def prometheus(fake: FakePrometheus, aiohttp_server: object) -> AsyncIterator[Prometheus]:
    server: TestServer = await aiohttp_server(fake.app())  # type: ignore[operator]
    client = Prometheus(str(server.make_url("/")))
    await client.open()
    yield client
    await client.close()


@pytest.fixture
def rig(tmp_path: Path, fake: FakePrometheus, prometheus: Prometheus) -> Rig:
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTES)
    return Rig(path, Clock(), fake, prometheus)
