"""Every PromQL expression the operators look at: the dashboard's panels and the alert rules."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

from tests.deploy.tools import DEPLOY

DASHBOARD = DEPLOY / "grafana" / "dashboards" / "strangler.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
_METRIC = re.compile(r"\b((?:strangler|imageservice|legacy)_[a-z0-9_]+)\b")
_SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


@dataclass(frozen=True)
class Query:
    source: str  # "panel <title> <refId>" or "alert <name>"
    expr: str

    def metrics(self) -> set[str]:
        return set(_METRIC.findall(self.expr))


def dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text())
    assert isinstance(data, dict)
    return data


def panels(data: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows, without the rows themselves."""
    found: list[dict[str, Any]] = []
    for panel in (data or dashboard())["panels"]:
        if panel["type"] == "row":
            found.extend(panel.get("panels", []))
        else:
            found.append(panel)
    return found


def dashboard_queries() -> list[Query]:
    """Every panel's targets, then every annotation query (the rollout's step and phase changes)."""
    found = [
        Query(f"panel {panel['title']!r} {target['refId']}", target["expr"])
        for panel in panels()
        for target in panel.get("targets", [])
    ]
    found += [Query(f"annotation {item['name']!r}", item["expr"]) for item in annotations()]
    return found


def annotations() -> list[dict[str, Any]]:
    """The dashboard's annotations that run a PromQL query (the built-in one runs none)."""
    return [item for item in dashboard()["annotations"]["list"] if "expr" in item]


# The metrics of the rollout controller (proxy/controller/metrics.py): only a running controller exports
# them, which tests/e2e/test_progressive.py starts; tests/e2e/test_prometheus.py's stack has none.
CONTROLLER_METRICS = frozenset({
    "strangler_rollout_step", "strangler_rollout_percent_target", "strangler_rollout_phase",
    "strangler_rollout_analyses_total",
})  # fmt: skip


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def alert_queries() -> list[Query]:
    return [Query(f"alert {rule['alert']}", rule["expr"]) for rule in alert_rules()]


def substitute(expr: str, *, route: str = ".*", rate_interval: str = "1m", range_: str = "5m") -> str:
    """Grafana's template variables as Grafana would fill them (route: the `All` value)."""
    return (
        expr.replace("$__rate_interval", rate_interval)
        .replace("$__interval", rate_interval)
        .replace("$__range", range_)
        .replace("${route}", route)
        .replace("$route", route)
    )


def base_name(metric: str) -> str:
    for suffix in _SUFFIXES:
        if metric.endswith(suffix):
            return metric[: -len(suffix)]
    return metric
