"""https:// upstreams: the proxy verifies the upstream's certificate (the system's CAs, or the upstream's
own `ca_bundle`), sends SNI, and never talks to an upstream it cannot verify. A real TLS server on
127.0.0.1 with a certificate from a throwaway CA (trustme)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.config import ConfigError, load_config
from tests.integration.proxy.conftest import ProxyFactory, config_dict, write_config


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


async def serve_tls(ca: trustme.CA, *names: str) -> tuple[TestServer, list[str]]:
    """An upstream on 127.0.0.1 with a certificate for `names` that records the SNI name it was asked for."""
    seen: list[str] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)

    def sni(_: ssl.SSLObject, name: str | None, __: ssl.SSLContext) -> None:
        seen.append(name or "")

    context.sni_callback = sni  # type: ignore[assignment]

    async def answer(request: web.Request) -> web.StreamResponse:
        return web.json_response({"host": request.headers["Host"], "path": request.path_qs})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=context)
    return server, seen


@pytest.fixture
async def tls_upstream(ca: trustme.CA) -> AsyncIterator[tuple[TestServer, list[str]]]:
    server, seen = await serve_tls(ca, "localhost", "127.0.0.1")
    yield server, seen
    await server.close()


def https_doc(server: TestServer, bundle: Path | None, host: str = "localhost") -> dict[str, Any]:
    doc = config_dict({"secure": f"https://{host}:{server.port}"})
    if bundle is not None:
        doc["upstreams"]["secure"]["ca_bundle"] = str(bundle)
    return doc


async def test_an_upstream_verified_with_its_ca_bundle_is_reached_with_sni_and_its_own_host(
    make_proxy: ProxyFactory, tls_upstream: tuple[TestServer, list[str]], ca: trustme.CA, tmp_path: Path
) -> None:
    server, seen = tls_upstream
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    proxy = await make_proxy(https_doc(server, bundle))

    async with proxy.client.get("/orders/7?x=1") as response:
        assert response.status == 200
        assert await response.json() == {"host": f"localhost:{server.port}", "path": "/orders/7?x=1"}
    assert seen == ["localhost"]


async def test_an_upstream_whose_certificate_cannot_be_verified_is_never_talked_to(
    make_proxy: ProxyFactory, tls_upstream: tuple[TestServer, list[str]]
) -> None:
    server, _ = tls_upstream
    proxy = await make_proxy(https_doc(server, None))  # the system's CAs do not know the throwaway CA

    async with proxy.client.get("/orders/7") as response:
        assert response.status == 502
        assert (await response.json())["error"]["code"] == "upstream_unreachable"
    labels = {"route": "default", "upstream": "secure", "kind": "connect"}
    errors = proxy.sample("strangler_upstream_errors_total", **labels)
    assert errors == 1


async def test_a_certificate_for_another_name_is_refused_even_from_a_trusted_ca(
    make_proxy: ProxyFactory, ca: trustme.CA, tmp_path: Path
) -> None:
    server, seen = await serve_tls(ca, "other.example")
    try:
        bundle = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        proxy = await make_proxy(https_doc(server, bundle))  # asks for localhost, is shown other.example

        async with proxy.client.get("/") as response:
            assert response.status == 502
            assert (await response.json())["error"]["code"] == "upstream_unreachable"
        assert seen == ["localhost"]  # the handshake happened and was refused by the proxy, not skipped
    finally:
        await server.close()


def test_a_ca_bundle_that_is_missing_or_not_pem_is_a_config_error_at_its_line(tmp_path: Path) -> None:
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    for bundle, reason in ((tmp_path / "missing.pem", "No such file"), (not_pem, "cannot use")):
        path = write_config(tmp_path / "routes.yaml", config_dict({"secure": "https://localhost:1"}))
        text = path.read_text().replace("timeout_s: 5.0\n", f"timeout_s: 5.0\n    ca_bundle: {bundle}\n", 1)
        path.write_text(text)
        with pytest.raises(ConfigError) as raised:
            load_config(path)
        line = next(n for n, row in enumerate(text.splitlines(), 1) if "ca_bundle" in row)
        (error,) = raised.value.errors
        assert error.startswith(f"{path}:{line}: upstreams.secure.ca_bundle: cannot use '{bundle}'")
        assert reason in error


@pytest.mark.parametrize(
    ("url", "bundle", "message"),
    [
        ("https://localhost:1", "ca.pem", "must be an absolute path"),
        ("http://localhost:1", "/etc/ssl/ca.pem", "ca_bundle is for https:// upstreams only"),
    ],
)
def test_a_ca_bundle_must_be_absolute_and_only_for_https(
    tmp_path: Path, url: str, bundle: str, message: str
) -> None:
    doc = config_dict({"secure": url})
    doc["upstreams"]["secure"]["ca_bundle"] = bundle
    with pytest.raises(ConfigError, match=message):
        load_config(write_config(tmp_path / "routes.yaml", doc))
