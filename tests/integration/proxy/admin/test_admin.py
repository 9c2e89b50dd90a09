"""The admin listener: health, readiness, metrics, and the token-protected /config /routes /reload."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from proxy.admin.api import ADMIN_API
from proxy.admin.app import create_admin_app
from proxy.admin.auth import FREE_FAILURES, AuthThrottle
from proxy.console.figures import NAMES, read, tally
from tests.integration.proxy.conftest import ProxyFactory, closed_port, config_dict, images_route, url_of

TOKEN = {"Authorization": "Bearer s3cret"}


def _doc(upstreams: dict[str, Any], percent: float = 25) -> dict[str, Any]:
    urls = {name: url_of(server) for name, (server, _) in upstreams.items()}
    return config_dict(urls, routes=[images_route(percent, rollout={"sticky_key": ["header:X-User-Id"]})])


async def test_protected_endpoints_answer_401_without_or_with_a_wrong_token(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy = await make_proxy(_doc(upstreams))
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
        for method, path in (("GET", "/config"), ("GET", "/routes"), ("POST", "/reload")):
            response = await proxy.admin.request(method, path, headers=headers)
            assert response.status == 401
            assert (await response.json())["error"]["code"] == "unauthorized"
    assert proxy.sample("strangler_config_reloads_total", result="success") == 0


async def test_protected_endpoints_answer_403_when_no_token_is_configured(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy = await make_proxy(_doc(upstreams), admin_token=None)
    response = await proxy.admin.get("/config", headers=TOKEN)
    body = await response.json()
    assert response.status == 403
    assert "STRANGLER_ADMIN_TOKEN" in body["error"]["message"]


async def test_config_shows_what_is_serving(make_proxy: ProxyFactory, upstreams: Any) -> None:
    proxy = await make_proxy(_doc(upstreams))
    response = await proxy.admin.get("/config", headers=TOKEN)
    body = await response.json()
    assert response.status == 200
    assert body["path"] == str(proxy.config_path)
    assert len(body["sha256"]) == 64
    assert isinstance(body["loaded_at"], float)
    assert body["config"]["routes"][0]["rollout"]["percent"] == 25
    assert set(body["config"]["upstreams"]) == {"legacy", "new"}


async def test_routes_show_the_effective_percent_and_counts_by_role(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy = await make_proxy(_doc(upstreams, percent=100))
    for i in range(3):
        await proxy.client.get("/api/images", headers={"X-User-Id": f"u{i}"})
    await proxy.client.get("/other")
    response = await proxy.admin.get("/routes", headers=TOKEN)
    body = await response.json()
    assert body["routes"] == [
        {
            "name": "images",
            "primary": "legacy",
            "candidate": "new",
            "percent": 100.0,
            "requests": {"primary": 0, "candidate": 3},
        }
    ]
    assert body["default"] == {"upstream": "legacy", "requests": 1}


async def test_healthz_is_ok_and_readyz_checks_the_upstreams(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy = await make_proxy(_doc(upstreams))
    assert (await proxy.admin.get("/healthz")).status == 200
    response = await proxy.admin.get("/readyz")
    body = await response.json()
    assert response.status == 200
    assert body["upstreams"] == {"legacy": "ok", "new": "ok"}

    server, _ = upstreams["legacy"]
    gone = f"http://127.0.0.1:{closed_port()}"
    down = await make_proxy(config_dict({"legacy": url_of(server), "gone": gone}))
    response = await down.admin.get("/readyz")
    body = await response.json()
    assert response.status == 503
    assert body["upstreams"]["legacy"] == "ok"
    assert body["upstreams"]["gone"] != "ok"


async def test_the_public_listener_does_not_serve_the_admin_endpoints(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy = await make_proxy(_doc(upstreams))
    response = await proxy.client.get("/metrics")
    assert (await response.json())["served_by"] == "legacy"  # proxied like any other path


async def test_metrics_count_requests_durations_and_decisions_after_traffic(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy = await make_proxy(_doc(upstreams, percent=100))
    for i in range(4):
        await proxy.client.get("/api/images", headers={"X-User-Id": f"u{i}"})
    await proxy.client.post("/api/images", headers={"X-User-Id": "u0"}, data=b"{}")
    await proxy.client.request("PROPFIND", "/api/images", headers={"X-User-Id": "u0"})
    await proxy.client.get("/elsewhere")

    def requests(method: str, role: str = "candidate", route: str = "images", upstream: str = "new") -> float:
        return proxy.sample(
            "strangler_requests_total", route=route, upstream=upstream, role=role, method=method, code="200"
        )

    assert requests("GET") == 4
    assert requests("POST") == 1
    assert requests("OTHER") == 1  # unknown methods share one label value
    assert requests("GET", role="default", route="default", upstream="legacy") == 1
    assert proxy.sample(
        "strangler_request_duration_seconds_count", route="images", upstream="new", role="candidate"
    ) == 6
    assert proxy.sample("strangler_decisions_total", route="images", reason="percent") == 6
    assert proxy.sample("strangler_rollout_percent", route="images") == 100
    assert proxy.sample("strangler_config_last_reload_success_timestamp_seconds") > 0

    response = await proxy.admin.get("/metrics")
    names = {family.name for family in text_string_to_metric_families(await response.text())}
    assert {
        "strangler_requests",
        "strangler_request_duration_seconds",
        "strangler_upstream_errors",
        "strangler_decisions",
        "strangler_rollout_percent",
        "strangler_config_reloads",
        "strangler_config_last_reload_successful",
        "strangler_config_last_reload_success_timestamp_seconds",
    } <= names


async def test_the_families_of_the_api_are_what_metrics_exports_of_them(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy = await make_proxy(_doc(upstreams, percent=50))
    for i in range(6):
        await proxy.client.get("/api/images", headers={"X-User-Id": f"u{i}"})
    await proxy.client.get("/elsewhere")
    api = proxy.admin.app[ADMIN_API]

    families = await api.families(NAMES)

    assert {sample.name for family in families for sample in family.samples} <= set(NAMES)
    traffic = tally(families)
    assert traffic == read(await (await proxy.admin.get("/metrics")).text())
    assert sum(traffic.side("images", role).requests for role in ("primary", "candidate")) == 6
    assert await api.families([]) == []


async def test_a_peer_that_keeps_failing_is_throttled_even_with_the_right_token_until_it_waits(
    make_proxy: ProxyFactory, upstreams: Any, aiohttp_client: Any
) -> None:
    proxy = await make_proxy(_doc(upstreams))
    clock = Clock()
    admin = await aiohttp_client(create_admin_app(proxy.app, auth_throttle=AuthThrottle(clock=clock)))
    wrong = {"Authorization": "Bearer not-the-token"}
    with capture_logs() as logs:
        statuses = [(await admin.get("/config", headers=wrong)).status for _ in range(FREE_FAILURES)]
        assert statuses == [401] * FREE_FAILURES
        throttled = await admin.get("/config", headers=TOKEN)  # the right token is not even compared
        assert throttled.status == 429
        assert throttled.headers["Retry-After"] == "1"
        assert (await throttled.json())["error"]["code"] == "too_many_auth_failures"
        clock.now += 1
        assert (await admin.get("/config", headers=TOKEN)).status == 200
        assert (await admin.get("/config", headers=wrong)).status == 401  # the success forgot the failures
        assert (await admin.get("/config", headers=wrong)).status == 401
        assert (await admin.get("/config")).status == 401  # a missing token: counted, guesses nothing
    failed = [line for line in logs if line["event"] == "admin_auth_failed"]
    assert [line["reason"] for line in failed] == ["wrong"] * (FREE_FAILURES + 2) + ["missing"]
    assert {line["log_level"] for line in failed} == {"warning"}
    assert {line["peer"] for line in failed} == {"127.0.0.1"}
    assert "not-the-token" not in repr(logs)
    assert proxy.sample("strangler_admin_auth_failures_total", reason="wrong") == FREE_FAILURES + 2
    assert proxy.sample("strangler_admin_auth_failures_total", reason="missing") == 1
    assert proxy.sample("strangler_admin_auth_failures_total", reason="throttled") == 1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
