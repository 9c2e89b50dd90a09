"""The Grafana dashboard and its provisioning: valid, complete, and built on metrics that exist."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.deploy.queries import (
    alert_queries,
    annotations,
    base_name,
    dashboard,
    dashboard_queries,
    panels,
)
from tests.deploy.tools import DEPLOY, REPO

PROVISIONING = DEPLOY / "grafana" / "provisioning"
_NAME_IN_SOURCE = re.compile(r"\"((?:strangler|imageservice|legacy)_[a-z0-9_]+)\"")


def exported_metrics() -> set[str]:
    """Base names of every metric the three services define (prometheus_client strips `_total`)."""
    names: set[str] = set()
    for package in ("proxy", "imageservice", "legacy_stub"):
        for source in (REPO / package).rglob("*.py"):
            names.update(base_name(name) for name in _NAME_IN_SOURCE.findall(source.read_text()))
    return names


def test_the_datasource_is_the_prometheus_of_the_stack_under_the_uid_the_dashboard_uses() -> None:
    datasources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert [(d["type"], d["url"]) for d in datasources] == [("prometheus", "http://prometheus:9090")]
    uid = datasources[0]["uid"]
    for panel in panels():
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert all(t["datasource"]["uid"] == uid for t in panel["targets"]), panel["title"]


def test_the_dashboard_is_titled_for_the_migration_and_has_a_route_variable() -> None:
    data = dashboard()
    assert "migration" in data["title"].lower()
    assert "legacy" in data["title"].lower()
    assert "imageservice" in data["title"].lower()
    variables = {v["name"]: v for v in data["templating"]["list"]}
    route = variables["route"]
    assert route["type"] == "query"
    assert "strangler_requests_total" in route["definition"]
    assert route["includeAll"]
    assert route["allValue"] == ".*"


def test_panels_have_unique_ids_fit_the_grid_and_each_shows_a_query() -> None:
    data = dashboard()
    ids = [panel["id"] for panel in data["panels"]]
    assert len(ids) == len(set(ids))
    for panel in data["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert all(t["expr"].strip() for t in panel["targets"]), panel["title"]
            ref_ids = [t["refId"] for t in panel["targets"]]
            assert len(ref_ids) == len(set(ref_ids)), panel["title"]


def test_panels_compare_old_and_new_on_every_subject_the_operators_need() -> None:
    text = "\n".join(query.expr for query in dashboard_queries())
    by_role = [q.expr for q in dashboard_queries() if "by (role" in q.expr]
    errors = [e for e in by_role if "strangler_requests_total" in e and 'code=~"5.."' in e]
    assert errors, "error rate by role"
    for quantile in ("0.5", "0.95", "0.99"):
        assert any(f"histogram_quantile({quantile}" in e for e in by_role), f"p{quantile} by role"
    assert any("strangler_requests_total" in e and "group_left" in e for e in by_role), "share by role"
    for subject in (
        "strangler_rollout_percent", "strangler_guard_tripped", "strangler_shadow_comparisons_total",
        "strangler_shadow_mismatches_total", "strangler_shadow_requests_total", "strangler_fallbacks_total",
        "strangler_config_reloads_total",
    ):  # fmt: skip
        assert subject in text, subject
    assert any("by (kind)" in q.expr and "shadow_mismatches" in q.expr for q in dashboard_queries())


def test_the_rollout_controllers_phase_and_step_are_shown_and_every_change_is_annotated() -> None:
    text = "\n".join(query.expr for query in dashboard_queries() if query.source.startswith("panel"))
    for metric in ("strangler_rollout_phase", "strangler_rollout_step", "strangler_rollout_analyses_total"):
        assert metric in text, metric
    marks = {item["name"]: item for item in annotations()}
    assert "changes(strangler_rollout_step" in marks["Rollout steps"]["expr"]
    assert "changes(strangler_rollout_phase" in marks["Rollout phases"]["expr"]
    for item in marks.values():
        assert item["enable"], item["name"]
        assert item["datasource"] == {"type": "prometheus", "uid": "prometheus"}, item["name"]


def test_every_route_scoped_query_follows_the_route_variable() -> None:
    for query in dashboard_queries():
        if "route" in query.expr and "strangler_" in query.expr:
            for selector in re.findall(r"strangler_\w+\{([^}]*)\}", query.expr):
                assert 'route=~"$route"' in selector, f"{query.source}: {selector}"


def test_every_metric_of_the_dashboard_and_the_alerts_is_exported_by_a_service() -> None:
    exported = exported_metrics()
    for query in [*dashboard_queries(), *alert_queries()]:
        for metric in query.metrics():
            assert base_name(metric) in exported, f"{query.source}: {metric} is exported by no service"


def test_the_provider_serves_the_dashboards_folder_read_only() -> None:
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "strangler.yml").read_text())["providers"][0]
    assert provider["type"] == "file"
    assert provider["allowUiUpdates"] is False
    assert Path(provider["options"]["path"]).is_absolute()
