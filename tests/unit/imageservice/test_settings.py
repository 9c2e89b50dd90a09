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
    ],
)
def test_bad_settings_are_refused_naming_the_variable(env: dict[str, str], culprit: str) -> None:
    with pytest.raises(SettingsError, match=culprit):
        Settings.from_env(env)
