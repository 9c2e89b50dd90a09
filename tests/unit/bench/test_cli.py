from __future__ import annotations

import sys
import types

import pytest

from bench.__main__ import main


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
