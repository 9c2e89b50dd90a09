from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml

from proxy.__main__ import main

REPO = Path(__file__).resolve().parents[3]

BROKEN = """\
version: 1
upstreams:
  legacy: {url: "http://127.0.0.1:8081"}
default_upstream: legacy
routes:
  - name: images
    match: {path_prefix: /api/images}
    primary: legacy
    candidate: legacy
    rollout:
      percent: 140
      on_missing_key: yes
"""


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "proxy", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, check=False)


def test_validate_accepts_the_shipped_routes_yaml_with_a_one_line_summary() -> None:
    result = run_cli("validate", "routes.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "routes.yaml: OK — 1 route, 2 upstreams, images 10%\n"


def test_validate_lists_every_error_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "routes.yaml").write_text(BROKEN)
    result = run_cli("validate", "routes.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "routes.yaml:11: routes[0].rollout.percent: must be between 0 and 100",
        "routes.yaml:12: routes[0].rollout.on_missing_key: "
        "must be 'primary', 'candidate' or 'random' (got 'yes')",
    ]


def test_validate_names_the_file_as_it_was_given(tmp_path: Path) -> None:
    (tmp_path / "routes.yaml").write_text(BROKEN)
    result = run_cli("validate", str(tmp_path / "routes.yaml"))
    assert result.returncode == 1
    assert result.stderr.splitlines()[0].startswith(f"{tmp_path / 'routes.yaml'}:11: ")


def test_validate_of_a_missing_file_exits_1(tmp_path: Path) -> None:
    result = run_cli("validate", "nope.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == "nope.yaml:1: (file): cannot read: No such file or directory\n"


def test_a_usage_error_exits_2() -> None:
    assert run_cli("validate").returncode == 2
    assert run_cli("frobnicate").returncode == 2


def test_show_prints_the_config_with_defaults_filled_in(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", str(REPO / "routes.yaml"), "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["upstreams"]["legacy"] == {
        "url": "http://127.0.0.1:8081", "connect_timeout_s": 2.0, "timeout_s": 60.0,
        "circuit": {"failures": 5, "open_s": 5.0, "max_open_s": 60.0},
        "max_connections": 512, "queue_timeout_s": 1.0, "ca_bundle": None}
    assert shown["routes"][0]["request_body"] == "buffer"
    assert shown["limits"]["memory_budget_bytes"] == 64 * 1024 * 1024
    assert shown["routes"][0]["rollout"]["salt"] == "images"
    assert shown["routes"][0]["flags"][2]["in"] == ["alice", "bob"]


def test_show_as_yaml_round_trips_through_the_validator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["show", str(REPO / "routes.yaml")]) == 0
    out = capsys.readouterr().out
    (tmp_path / "shown.yaml").write_text(out)
    assert main(["validate", str(tmp_path / "shown.yaml")]) == 0
    assert yaml.safe_load(out)["routes"][0]["rollout"]["percent"] == 10


def test_validate_summarises_several_routes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(BROKEN.replace("percent: 140", "percent: 12.5").replace("on_missing_key: yes", "salt: s")
                    + "  - {name: static, match: {path_prefix: /static}, primary: legacy}\n")
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: OK — 2 routes, 1 upstream, images 12.5%, static → legacy\n"


@pytest.fixture(autouse=True)
def _no_global_logging_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    # configure_logging rewires the root logger of this process; the tests here only need argv handling.
    monkeypatch.setattr("proxy.__main__.configure_logging", lambda *args, **kwargs: None)


def use_fake_server(monkeypatch: pytest.MonkeyPatch, fake: types.ModuleType) -> None:
    """`serve` imports proxy.server when it runs: hand it the fake instead."""
    import proxy

    monkeypatch.setitem(sys.modules, "proxy.server", fake)
    monkeypatch.setattr(proxy, "server", fake, raising=False)


def fake_server(calls: list[dict[str, Any]]) -> types.ModuleType:
    module = types.ModuleType("proxy.server")
    module.serve = lambda **kwargs: calls.append(kwargs)  # type: ignore[attr-defined]
    return module


def test_serve_passes_its_options_and_the_admin_token_to_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    use_fake_server(monkeypatch, fake_server(calls))
    monkeypatch.setenv("STRANGLER_ADMIN_TOKEN", "s3cret")
    monkeypatch.delenv("STRANGLER_ADMIN_TOKEN_FILE", raising=False)
    monkeypatch.delenv("STRANGLER_SHADOW_KEY", raising=False)
    monkeypatch.delenv("STRANGLER_SHADOW_KEY_FILE", raising=False)
    monkeypatch.delenv("STRANGLER_CONTROLLER_URL", raising=False)
    assert main(["serve", "--config", "routes.yaml", "--port", "9000", "--log-level", "WARNING"]) == 0
    assert calls == [{"config_path": "routes.yaml", "host": "0.0.0.0", "port": 9000,
                      "admin_host": "127.0.0.1", "admin_port": 8089, "admin_token": "s3cret",
                      "shadow_key": None, "reload_settle_s": 2.0, "controller_url": None}]


def test_serve_gives_the_console_the_controllers_url(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    use_fake_server(monkeypatch, fake_server(calls))
    monkeypatch.setenv("STRANGLER_CONTROLLER_URL", "http://127.0.0.1:8090")
    assert main(["serve", "--config", "r.yaml"]) == 0
    assert calls[0]["controller_url"] == "http://127.0.0.1:8090"


def test_serve_reads_the_shadow_key_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []
    use_fake_server(monkeypatch, fake_server(calls))
    (tmp_path / "key").write_text("k" * 40 + "\n")
    monkeypatch.delenv("STRANGLER_SHADOW_KEY", raising=False)
    monkeypatch.setenv("STRANGLER_SHADOW_KEY_FILE", str(tmp_path / "key"))
    assert main(["serve", "--config", "r.yaml"]) == 0
    assert calls[0]["shadow_key"] == b"k" * 40


def test_serve_refuses_a_short_shadow_key_without_echoing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    use_fake_server(monkeypatch, fake_server([]))
    monkeypatch.setenv("STRANGLER_SHADOW_KEY", "tooshort-secret")
    monkeypatch.delenv("STRANGLER_SHADOW_KEY_FILE", raising=False)
    with pytest.raises(SystemExit, match="at least 32 characters") as raised:
        main(["serve", "--config", "r.yaml"])
    assert "tooshort-secret" not in str(raised.value)


def test_serve_reads_the_admin_token_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []
    use_fake_server(monkeypatch, fake_server(calls))
    (tmp_path / "token").write_text("from-file\n")
    monkeypatch.delenv("STRANGLER_ADMIN_TOKEN", raising=False)
    monkeypatch.setenv("STRANGLER_ADMIN_TOKEN_FILE", str(tmp_path / "token"))
    assert main(["serve", "--config", "r.yaml", "--host", "127.0.0.1", "--admin-port", "0"]) == 0
    assert calls[0]["admin_token"] == "from-file"
    assert calls[0]["admin_port"] == 0


def test_serve_without_a_token_passes_none(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    use_fake_server(monkeypatch, fake_server(calls))
    monkeypatch.delenv("STRANGLER_ADMIN_TOKEN", raising=False)
    monkeypatch.delenv("STRANGLER_ADMIN_TOKEN_FILE", raising=False)
    assert main(["serve", "--config", "r.yaml"]) == 0
    assert calls[0]["admin_token"] is None


def test_serve_refuses_two_token_sources(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    use_fake_server(monkeypatch, fake_server([]))
    monkeypatch.setenv("STRANGLER_ADMIN_TOKEN", "a")
    monkeypatch.setenv("STRANGLER_ADMIN_TOKEN_FILE", str(tmp_path / "token"))
    with pytest.raises(SystemExit, match="not both"):
        main(["serve", "--config", "r.yaml"])


def test_an_unknown_log_level_is_a_usage_error() -> None:
    result = run_cli("serve", "--config", "routes.yaml", "--log-level", "chatty")
    assert result.returncode == 2
    assert "--log-level" in result.stderr


def test_serve_passes_the_reload_settle_time_and_refuses_a_negative_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[dict[str, Any]] = []
    use_fake_server(monkeypatch, fake_server(calls))
    assert main(["serve", "--config", "r.yaml", "--reload-settle-s", "0.5"]) == 0
    assert calls[0]["reload_settle_s"] == 0.5
    for bad in ("-1", "nan", "soon"):
        with pytest.raises(SystemExit) as exited:
            main(["serve", "--config", "r.yaml", "--reload-settle-s", bad])
        assert exited.value.code == 2
    assert "--reload-settle-s" in capsys.readouterr().err


def test_serve_hands_the_access_log_flush_interval_to_logging_and_refuses_a_bad_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_fake_server(monkeypatch, fake_server([]))
    configured: list[dict[str, Any]] = []
    monkeypatch.setattr("proxy.__main__.configure_logging", lambda *args, **kwargs: configured.append(kwargs))
    assert main(["serve", "--config", "r.yaml"]) == 0
    assert main(["serve", "--config", "r.yaml", "--access-log-flush-ms", "250"]) == 0
    assert main(["serve", "--config", "r.yaml", "--access-log-flush-ms", "0"]) == 0
    assert [kwargs["direct_flush_s"] for kwargs in configured] == [0.1, 0.25, 0.0]
    for bad in ("-1", "10001", "0.5", "soon"):
        with pytest.raises(SystemExit) as exited:
            main(["serve", "--config", "r.yaml", "--access-log-flush-ms", bad])
        assert exited.value.code == 2
    assert "whole number of milliseconds from 0 to 10000" in capsys.readouterr().err


def test_serve_help_says_what_the_settle_time_is_for() -> None:
    result = run_cli("serve", "--help")
    assert result.returncode == 0
    assert "--reload-settle-s" in result.stdout
    assert "renamed into place" in " ".join(result.stdout.split())


def test_serve_workers_is_auto_or_a_count_from_1_to_64_and_auto_on_one_cpu_is_one_process(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[dict[str, Any]] = []
    use_fake_server(monkeypatch, fake_server(calls))
    monkeypatch.setattr("proxy.__main__.usable_cpus", lambda: 1)
    assert main(["serve", "--config", "r.yaml", "--workers", "auto"]) == 0
    assert main(["serve", "--config", "r.yaml", "--workers", "1"]) == 0
    assert len(calls) == 2  # the single-process path: no parent, no supervisor
    assert "admin_socket" not in calls[0]
    for bad in ("0", "65", "-1", "many"):
        with pytest.raises(SystemExit) as exited:
            main(["serve", "--config", "r.yaml", "--workers", bad])
        assert exited.value.code == 2
    assert "must be auto or a number from 1 to 64" in capsys.readouterr().err


def test_a_worker_the_parent_starts_shares_the_port_and_listens_for_admin_on_its_private_socket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[dict[str, Any]] = []
    use_fake_server(monkeypatch, fake_server(calls))
    try:
        argv = ["serve", "--config", "r.yaml", "--worker-index", "3", "--admin-socket", "/p/worker-3.sock"]
        assert main(argv) == 0
        assert structlog.contextvars.get_contextvars()["worker"] == 3  # every log line says which worker
    finally:
        structlog.contextvars.unbind_contextvars("worker")
    assert (calls[0]["admin_socket"], calls[0]["reuse_port"]) == ("/p/worker-3.sock", True)


def test_serve_help_says_what_auto_means_and_why_one_worker_is_the_default() -> None:
    result = run_cli("serve", "--help")
    text = " ".join(result.stdout.split())
    assert "--workers auto|N" in text
    assert "developer machine" in text
    assert "container images" in text
    assert "--admin-socket" not in text  # set by the parent for its workers, not for people
