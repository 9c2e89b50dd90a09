"""The bench's generated configs must be valid for the real proxy, and nginx's must say what we claim."""

from __future__ import annotations

from pathlib import Path

from bench import configs, nginx
from bench.closedloop import ClosedLoopResult
from bench.scenarios.shadow import parse_shadow_outcomes
from bench.scenarios.soak import soak_config
from proxy.config import parse_config
from proxy.routing import compile_routes


def test_the_fifty_route_table_is_valid_and_the_routed_path_hits_the_last_route() -> None:
    config = parse_config(configs.dump(configs.fifty_routes("http://127.0.0.1:9")))
    assert len(config.routes) == 50
    assert all(len(route.flags) == 4 for route in config.routes)
    assert configs.ROUTED_PATH.startswith(f"/svc{len(config.routes) - 1}/")
    assert not any(configs.UNROUTED_PATH.startswith(f"/svc{i}") for i in range(50))


def test_the_shadow_arms_mirror_everything_or_nothing() -> None:
    on = compile_routes(
        parse_config(configs.dump(configs.shadowed("http://127.0.0.1:9", "http://127.0.0.1:10")))
    )
    off = compile_routes(parse_config(configs.dump(configs.shadowed("http://127.0.0.1:9", None))))
    assert set(on.shadowed) == {"api"}
    assert not off.shadowed


def test_the_migration_configs_differ_only_in_the_rollout_percentage() -> None:
    before = configs.migration("http://127.0.0.1:1", "http://127.0.0.1:2", percent=0)
    after = configs.migration("http://127.0.0.1:1", "http://127.0.0.1:2", percent=100)
    assert parse_config(configs.dump(before)).routes[0].rollout.percent == 0  # type: ignore[union-attr]
    after["routes"][0]["rollout"]["percent"] = 0
    assert after == before


def test_the_soak_config_is_valid_with_a_partial_rollout_and_shadowing() -> None:
    doc = soak_config("http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3", percent=25)
    table = compile_routes(parse_config(configs.dump(doc)))
    assert [route.name for route in table.routes] == ["images", "static"]
    assert set(table.shadowed) == {"images"}


def test_nginx_runs_one_worker_with_upstream_keepalive_and_its_files_in_the_prefix(tmp_path: Path) -> None:
    text = nginx.render_conf(prefix=tmp_path, port=8000, upstream_port=9000)
    assert "worker_processes 1;" in text
    assert "keepalive 64;" in text
    assert 'proxy_set_header Connection "";' in text
    assert f"access_log {tmp_path}/access.log json;" in text
    assert f"pid {tmp_path}/nginx.pid;" in text
    assert "server 127.0.0.1:9000;" in text
    assert "listen 127.0.0.1:8000;" in text
    assert "access_log off;" in nginx.render_conf(prefix=tmp_path, port=1, upstream_port=2, access_log=False)
    argv = nginx.argv(tmp_path / "nginx.conf", tmp_path)
    assert argv[-2:] == ["-g", "daemon off;"]
    assert "-e" in argv


def test_shadow_outcomes_are_summed_over_routes_from_the_metrics_text() -> None:
    text = (
        "# HELP strangler_shadow_requests_total x\n"
        'strangler_shadow_requests_total{outcome="compared",route="a"} 3.0\n'
        'strangler_shadow_requests_total{outcome="compared",route="b"} 2.0\n'
        'strangler_shadow_requests_total{outcome="dropped_full",route="a"} 7.0\n'
        'strangler_requests_total{code="200"} 9.0\n'
    )
    assert parse_shadow_outcomes(text) == {"compared": 5.0, "dropped_full": 7.0}


def test_requests_still_running_at_the_deadline_count_at_their_age_in_the_p95() -> None:
    result = ClosedLoopResult(window_s=10.0, completed=[1.0] * 10, censored=[9.0] * 10)
    assert result.per_second == 1.0
    assert result.p95_s() == 9.0  # without the censored ones it would be 1.0
