"""Prometheus's config and alert rules, checked and unit-tested with promtool (Debian's prometheus)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import yaml

from tests.deploy.queries import ALERTS, alert_rules
from tests.deploy.tools import DEPLOY, run, tool

PROMETHEUS = DEPLOY / "prometheus"
REQUIRED_ALERTS = {
    "StranglerCandidateErrorRateAbovePrimary",  # candidate error rate above primary's
    "StranglerGuardTripped",
    "StranglerShadowMismatchRateHigh",
    "StranglerShadowDropping",
    "StranglerConfigReloadFailed",
    "StranglerCandidateLatencyAbovePrimary",  # candidate p95 worse than primary's
    "StranglerRolloutAborted",  # the progressive-delivery controller rolled a route back to 0 %
}


def test_promtool_accepts_the_config_and_the_rules() -> None:
    config = run(tool("promtool"), "check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert config.returncode == 0, config.stdout + config.stderr
    rules = run(tool("promtool"), "check", "rules", str(ALERTS))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in rules.stdout


def test_prometheus_scrapes_the_proxy_admin_listener_the_services_and_the_rollout_controller() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: [t for static in job["static_configs"] for t in static["targets"]]
        for job in config["scrape_configs"]
    }
    assert targets == {
        "proxy": ["proxy:8089"], "imageservice": ["imageservice:8082"], "legacy": ["legacy:8081"],
        "rollout-controller": ["rollout-controller:8090"],
    }  # fmt: skip
    assert config["rule_files"] == ["alerts.yml"]


def test_every_required_alert_exists_with_a_severity_and_an_explanation() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}
    assert set(rules) == REQUIRED_ALERTS
    for rule in rules.values():
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]


def test_promtool_unit_tests_prove_every_alert_fires_and_resolves() -> None:
    result = run(tool("promtool"), "test", "rules", str(PROMETHEUS / "alerts_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    cases = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    checks = [check for case in cases for check in case["alert_rule_test"]]
    for alert in REQUIRED_ALERTS:
        mine = [check for check in checks if check["alertname"] == alert]
        assert any(check["exp_alerts"] for check in mine), f"no test shows {alert} firing"
        assert any(not check["exp_alerts"] for check in mine), f"no test shows {alert} resolved or quiet"


def test_the_unit_tests_fail_when_an_alert_threshold_is_broken(tmp_path: Path) -> None:
    shutil.copy(PROMETHEUS / "alerts_test.yml", tmp_path / "alerts_test.yml")
    text = ALERTS.read_text()
    broken = re.sub(r"\n          > 0\.05\n", "\n          > 0.5\n", text)
    assert broken != text
    (tmp_path / "alerts.yml").write_text(broken)
    result = run(tool("promtool"), "test", "rules", str(tmp_path / "alerts_test.yml"))
    assert result.returncode != 0
    assert "StranglerShadowMismatchRateHigh" in result.stdout + result.stderr
