from __future__ import annotations

from pathlib import Path

import pytest

from imageservice.settings import Settings, SettingsError


def test_the_defaults_are_the_embedded_local_setup() -> None:
    settings = Settings.from_env({})
    assert (settings.generator, settings.storage) == ("local", "local")
    assert settings.data_dir == Path("var/imageservice")
    assert settings.openai_api_key is None


def test_the_api_key_can_come_from_a_file_and_never_shows_in_a_repr(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("sk-test-secret-123\n")
    settings = Settings.from_env({"OPENAI_API_KEY_FILE": str(key_file), "IMAGESERVICE_GENERATOR": "openai"})

    assert settings.openai_api_key is not None
    assert settings.openai_api_key.reveal() == "sk-test-secret-123"
    assert "sk-test" not in repr(settings)
    assert "sk-test" not in str(settings.openai_api_key)


def test_an_unreadable_key_file_is_a_settings_error_without_the_path_contents(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="OPENAI_API_KEY_FILE"):
        Settings.from_env({"OPENAI_API_KEY_FILE": str(tmp_path / "missing")})


@pytest.mark.parametrize(
    ("env", "culprit"),
    [
        ({"IMAGESERVICE_MAX_CONCURRENCY": "many"}, "IMAGESERVICE_MAX_CONCURRENCY"),
        ({"IMAGESERVICE_MAX_CONCURRENCY": "0"}, "IMAGESERVICE_MAX_CONCURRENCY"),
        ({"IMAGESERVICE_GENERATOR": "dalle"}, "IMAGESERVICE_GENERATOR"),
        ({"IMAGESERVICE_STORAGE": "ftp"}, "IMAGESERVICE_STORAGE"),
        ({"IMAGESERVICE_AWS_MAX_ATTEMPTS": "0"}, "IMAGESERVICE_AWS_MAX_ATTEMPTS"),
        ({"IMAGESERVICE_AWS_READ_TIMEOUT_S": "soon"}, "IMAGESERVICE_AWS_READ_TIMEOUT_S"),
        ({"IMAGESERVICE_SETTLE_ATTEMPTS": "0"}, "IMAGESERVICE_SETTLE_ATTEMPTS"),
    ],
)
def test_bad_settings_are_refused_naming_the_variable(env: dict[str, str], culprit: str) -> None:
    with pytest.raises(SettingsError, match=culprit):
        Settings.from_env(env)


def test_store_timeouts_and_background_settling_are_configurable_with_production_defaults() -> None:
    defaults = Settings.from_env({})
    assert (defaults.aws_connect_timeout_s, defaults.aws_read_timeout_s, defaults.aws_max_attempts) == (
        5,
        30,
        4,
    )
    assert (defaults.settle_attempts, defaults.settle_backoff_s, defaults.settle_max_backoff_s) == (
        12,
        0.5,
        15,
    )

    fast = Settings.from_env(
        {
            "IMAGESERVICE_AWS_CONNECT_TIMEOUT_S": "1",
            "IMAGESERVICE_AWS_READ_TIMEOUT_S": "2",
            "IMAGESERVICE_AWS_MAX_ATTEMPTS": "2",
            "IMAGESERVICE_SETTLE_ATTEMPTS": "60",
            "IMAGESERVICE_SETTLE_BACKOFF_S": "0.1",
            "IMAGESERVICE_SETTLE_MAX_BACKOFF_S": "0.5",
            "IMAGESERVICE_SHUTDOWN_SETTLE_S": "1",
        }
    )
    assert (fast.aws_connect_timeout_s, fast.aws_read_timeout_s, fast.aws_max_attempts) == (1, 2, 2)
    assert (fast.settle_attempts, fast.settle_backoff_s, fast.settle_max_backoff_s) == (60, 0.1, 0.5)
    assert fast.shutdown_settle_s == 1
