"""Routing through the real app: percentages, flags and their precedence, client_ip and trusted proxies."""

from __future__ import annotations

from typing import Any

from proxy.routing.bucketing import in_rollout
from tests.integration.proxy.conftest import ProxyFactory, config_dict, images_route, url_of

FLAGS = [
    {"header": "X-Images-Backend", "equals": "new", "use": "candidate"},
    {"cookie": "images_backend", "equals": "old", "use": "primary"},
    {"header": "X-User-Id", "in": ["alice", "bob"], "use": "candidate"},
    {"query": "backend", "equals": "new", "use": "candidate"},
]


def _doc(upstreams: dict[str, Any], route: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    urls = {name: url_of(server) for name, (server, _) in upstreams.items()}
    return config_dict(urls, routes=[route], **kwargs)


async def _served_by(proxy: Any, path: str = "/api/images", **kwargs: Any) -> str:
    response = await proxy.client.get(path, **kwargs)
    assert response.status == 200
    return (await response.json())["served_by"]  # type: ignore[no-any-return]


async def test_percent_100_sends_every_user_to_the_candidate(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    route = images_route(100, rollout={"sticky_key": ["header:X-User-Id"]})
    proxy = await make_proxy(_doc(upstreams, route))
    served = {await _served_by(proxy, headers={"X-User-Id": f"user-{i}"}) for i in range(20)}
    assert served == {"new"}
    assert proxy.sample("strangler_decisions_total", route="images", reason="percent") == 20


async def test_percent_0_keeps_every_user_on_the_primary(make_proxy: ProxyFactory, upstreams: Any) -> None:
    route = images_route(0, rollout={"sticky_key": ["header:X-User-Id"]})
    proxy = await make_proxy(_doc(upstreams, route))
    served = {await _served_by(proxy, headers={"X-User-Id": f"user-{i}"}) for i in range(20)}
    assert served == {"legacy"}


async def test_a_user_lands_on_the_side_their_bucket_says_every_time(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    route = images_route(50, rollout={"sticky_key": ["header:X-User-Id"]})
    proxy = await make_proxy(_doc(upstreams, route))
    for i in range(10):
        user = f"user-{i}"
        expected = "new" if in_rollout(user, percent=50, salt="images") else "legacy"
        for _ in range(2):
            assert await _served_by(proxy, headers={"X-User-Id": user}) == expected


async def test_paths_outside_the_route_go_to_the_default_upstream(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy = await make_proxy(_doc(upstreams, images_route(100), default="legacy"))
    assert await _served_by(proxy, "/api/imagesx") == "legacy"  # segment boundary, not a string prefix
    assert await _served_by(proxy, "/api/images/42") == "new"
    assert proxy.sample(
        "strangler_requests_total", route="default", upstream="legacy", role="default", method="GET",
        code="200",
    ) == 1  # fmt: skip


async def test_flags_override_the_percentage_and_the_first_matching_flag_wins(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy = await make_proxy(_doc(upstreams, images_route(0, flags=FLAGS)))
    assert await _served_by(proxy, headers={"X-Images-Backend": "new"}) == "new"
    assert await _served_by(proxy, headers={"X-User-Id": "alice"}) == "new"
    assert await _served_by(proxy, "/api/images?backend=new") == "new"
    assert await _served_by(proxy, headers={"X-User-Id": "carol"}) == "legacy"
    # Header flag (candidate) is listed before the cookie flag (primary): the header wins.
    both = {"X-Images-Backend": "new", "Cookie": "images_backend=old"}
    assert await _served_by(proxy, headers=both) == "new"
    assert proxy.sample("strangler_decisions_total", route="images", reason="flag") == 4


async def test_an_opt_out_flag_keeps_a_user_on_the_primary_at_100_percent(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    proxy = await make_proxy(_doc(upstreams, images_route(100, flags=FLAGS)))
    assert await _served_by(proxy, headers={"Cookie": "images_backend=old"}) == "legacy"
    assert await _served_by(proxy) == "new"


async def test_a_request_without_sticky_key_follows_on_missing_key(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    route = images_route(100, rollout={"sticky_key": ["header:X-User-Id"], "on_missing_key": "primary"})
    proxy = await make_proxy(_doc(upstreams, route))
    assert await _served_by(proxy) == "legacy"
    assert proxy.sample("strangler_decisions_total", route="images", reason="missing_key") == 1


def _ips_on_each_side(percent: float) -> tuple[str, str]:
    candidates = [f"198.51.100.{i}" for i in range(1, 255)]
    inside = next(ip for ip in candidates if in_rollout(ip, percent=percent, salt="images"))
    outside = next(ip for ip in candidates if not in_rollout(ip, percent=percent, salt="images"))
    return inside, outside


async def test_client_ip_comes_from_x_forwarded_for_only_behind_a_trusted_proxy(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    inside, outside = _ips_on_each_side(50)
    proxy = await make_proxy(_doc(upstreams, images_route(50), trusted=["127.0.0.1/32"]))
    assert await _served_by(proxy, headers={"X-Forwarded-For": inside}) == "new"
    assert await _served_by(proxy, headers={"X-Forwarded-For": outside}) == "legacy"


async def test_x_forwarded_for_is_ignored_when_the_peer_is_not_trusted(
    make_proxy: ProxyFactory, upstreams: Any
) -> None:
    inside, outside = _ips_on_each_side(50)
    proxy = await make_proxy(_doc(upstreams, images_route(50)))
    peer_side = "new" if in_rollout("127.0.0.1", percent=50, salt="images") else "legacy"
    assert await _served_by(proxy, headers={"X-Forwarded-For": inside}) == peer_side
    assert await _served_by(proxy, headers={"X-Forwarded-For": outside}) == peer_side
