"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import settings
from moto.server import ThreadedMotoServer

# Hypothesis's per-example deadline is a timing assertion: on a loaded 2-core machine it fails tests that
# are correct. Speed is measured in `make bench`, never here.
settings.register_profile("strangler", deadline=None)
settings.load_profile("strangler")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto in server mode on loopback (one per test process), spoken to over real HTTP."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
