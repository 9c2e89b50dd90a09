"""The implementations of the image API contract that the shared suite runs against.

Each factory builds a ready aiohttp application for one implementation, configured for tests
(no artificial delay, storage under tmp_path). The contract suite is the same for all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aiohttp import web

SHADOW_KEY = b"contract-suite-shadow-key-0123456789"  # both implementations verify the marker with it


def legacy_app(tmp_path: Path) -> web.Application:
    from legacy_stub.app import create_app
    from legacy_stub.settings import Settings

    return create_app(Settings(image_delay_s=0.0, shadow_key=SHADOW_KEY))


def imageservice_app(tmp_path: Path) -> web.Application:
    from imageservice.entrypoints.http import create_app
    from imageservice.settings import Settings

    return create_app(Settings(generator="local", storage="local", data_dir=tmp_path / "imageservice",
                               shadow_key=SHADOW_KEY))


IMPLEMENTATIONS: dict[str, Callable[[Path], web.Application]] = {
    "legacy": legacy_app,
    "imageservice": imageservice_app,
}
