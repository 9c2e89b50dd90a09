from __future__ import annotations

from pathlib import Path

import pytest

from bench.baseline import (
    Baseline,
    BaselineError,
    fit_argv,
    outside,
    parse_flags,
    worktree_path,
)

SAMPLES = Path(__file__).parent / "samples"
OLD_FLAGS = frozenset(
    {"--config", "--host", "--port", "--admin-host", "--admin-port", "--log-level", "--workers"}
)
SERVE = ["python", "-m", "proxy", "serve", "--config", "r.yaml", "--host", "127.0.0.1", "--port", "8080",
         "--admin-host", "127.0.0.1", "--admin-port", "8089"]  # fmt: skip


def test_the_flags_are_read_from_the_usage_of_an_old_serve_help() -> None:
    text = (SAMPLES / "serve_help_old.txt").read_text()
    assert parse_flags(text) == OLD_FLAGS


def test_an_option_only_mentioned_in_a_description_is_not_taken_for_a_flag() -> None:
    text = "usage: serve [-h] --config CONFIG\n\noptions:\n  --config CONFIG  unlike --reload-settle-s\n"
    assert parse_flags(text) == {"--config"}


def test_an_argv_the_old_cli_understands_is_kept_as_it_is() -> None:
    assert fit_argv(SERVE, OLD_FLAGS) == (SERVE, [])


def test_an_option_the_old_cli_lacks_is_left_out_with_its_value() -> None:
    argv = [*SERVE[:6], "--reload-settle-s", "0", *SERVE[6:], "--fast=yes", "--workers", "2"]
    kept, dropped = fit_argv(argv, OLD_FLAGS)
    assert kept == [*SERVE, "--workers", "2"]
    assert dropped == ["--reload-settle-s", "--fast"]


def test_a_flag_without_a_value_is_left_out_alone() -> None:
    kept, dropped = fit_argv([*SERVE, "--no-metrics"], OLD_FLAGS)
    assert kept == SERVE
    assert dropped == ["--no-metrics"]


def test_an_old_cli_without_an_option_the_bench_cannot_do_without_is_refused() -> None:
    with pytest.raises(BaselineError, match="--admin-port"):
        fit_argv(SERVE, OLD_FLAGS - {"--admin-port"})


def test_the_worktree_is_a_disposable_directory_named_after_the_commit() -> None:
    assert worktree_path(Path("/repo"), "528c3f2") == Path("/repo/var/bench/baseline-528c3f2")


def test_the_packages_must_come_from_the_baseline_tree_not_the_main_one(tmp_path: Path) -> None:
    tree = tmp_path / "var" / "bench" / "baseline-528c3f2"
    good = {"proxy": f"{tree}/proxy/__init__.py", "strangler_common": f"{tree}/strangler_common/__init__.py"}
    assert outside(good, tree) == []
    main = {**good, "proxy": f"{tmp_path}/proxy/__init__.py"}
    assert outside(main, tree) == ["proxy"]
    assert outside({"proxy": good["proxy"]}, tree) == ["strangler_common"]


def test_a_baseline_runs_with_its_tree_first_on_the_path_and_reports_ref_and_sha() -> None:
    baseline = Baseline("main~3", "528c3f22d4426440fce4f33be722fe5eba50c94d", "528c3f2", Path("/t"))
    assert baseline.env() == {"PYTHONPATH": "/t"}
    assert baseline.describe() == {"ref": "main~3", "sha": "528c3f22d4426440fce4f33be722fe5eba50c94d"}
