from __future__ import annotations

import pytest

from legacy_stub.__main__ import parse_args
from legacy_stub.settings import Settings, SettingsError


def test_without_environment_the_delay_is_two_seconds() -> None:
    assert Settings.from_env({}).image_delay_s == 2.0


@pytest.mark.parametrize(("raw", "expected"), [("0", 0.0), ("0.25", 0.25), (" 3 ", 3.0), ("", 2.0)])
def test_the_delay_is_read_from_legacy_image_delay_s(raw: str, expected: float) -> None:
    assert Settings.from_env({"LEGACY_IMAGE_DELAY_S": raw}).image_delay_s == expected


@pytest.mark.parametrize("raw", ["soon", "-1", "nan", "inf", "3601", "1,5"])
def test_a_bad_delay_is_refused_naming_the_variable(raw: str) -> None:
    with pytest.raises(SettingsError, match="LEGACY_IMAGE_DELAY_S"):
        Settings.from_env({"LEGACY_IMAGE_DELAY_S": raw})


@pytest.mark.parametrize(
    "kwargs", [{"image_delay_s": -0.1}, {"max_queue": 0}, {"max_echo_bytes": -5}, {"max_generations": True}]
)
def test_settings_refuse_values_that_cannot_work(kwargs: dict[str, object]) -> None:
    with pytest.raises(SettingsError):
        Settings(**kwargs)  # type: ignore[arg-type]


def test_the_command_line_defaults_to_loopback_port_8081() -> None:
    args = parse_args([])

    assert (args.host, args.port, args.log_level) == ("127.0.0.1", 8081, "INFO")


def test_the_command_line_takes_host_port_and_log_level() -> None:
    args = parse_args(["--host", "0.0.0.0", "--port", "9000", "--log-level", "debug"])

    assert (args.host, args.port, args.log_level) == ("0.0.0.0", 9000, "DEBUG")


@pytest.mark.parametrize("argv", [["--port", "70000"], ["--port", "x"], ["--log-level", "loud"]])
def test_the_command_line_refuses_bad_values(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc_info:
        parse_args(argv)
    assert exc_info.value.code == 2
