from __future__ import annotations

import sys
import types

import pytest

from bench.__main__ import main, parse_args


def test_traffic_is_handed_to_bench_traffic_with_the_rest_of_the_arguments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[list[str]] = []

    def fake_main(argv: list[str]) -> int:
        seen.append(argv)
        return 7

    fake = types.ModuleType("bench.traffic")
    fake.main = fake_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bench.traffic", fake)

    assert main(["traffic", "--rate", "5"]) == 7
    assert seen == [["--rate", "5"]]


def test_an_unknown_scenario_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["nonsense"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("scenario", ["passthrough", "all"])
def test_a_baseline_ref_is_taken_for_the_pass_through_scenario_alone_or_in_all(scenario: str) -> None:
    assert parse_args([scenario, "--baseline", "528c3f2", "--quick"]).baseline == "528c3f2"


def test_without_a_baseline_there_is_none() -> None:
    assert parse_args(["passthrough"]).baseline is None
    assert parse_args([]).baseline is None


@pytest.mark.parametrize("scenario", ["workers", "shadow", "migration", "routing", "soak"])
def test_a_baseline_for_a_scenario_that_cannot_use_it_is_a_usage_error(scenario: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args([scenario, "--baseline", "528c3f2"])
    assert exit_info.value.code == 2


def test_an_empty_baseline_ref_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["passthrough", "--baseline", " "])
    assert exit_info.value.code == 2
