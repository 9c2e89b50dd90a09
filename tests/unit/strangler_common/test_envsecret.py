"""Secrets from NAME or NAME_FILE: clear errors that never show the value."""

from __future__ import annotations

from pathlib import Path

import pytest

from strangler_common.envsecret import SecretError, read_secret, shadow_key


def test_a_value_or_a_file_and_never_both(tmp_path: Path) -> None:
    (tmp_path / "s").write_text("  from-file\n")
    assert read_secret({"X": "direct"}, "X") == "direct"
    assert read_secret({"X_FILE": str(tmp_path / "s")}, "X") == "from-file"
    assert read_secret({}, "X") is None
    with pytest.raises(SecretError, match="set X or X_FILE, not both"):
        read_secret({"X": "a", "X_FILE": str(tmp_path / "s")}, "X")


def test_an_unreadable_or_empty_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match=r"cannot read X_FILE \(.*missing\): No such file"):
        read_secret({"X_FILE": str(tmp_path / "missing")}, "X")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(SecretError, match=r"X_FILE .* is empty"):
        read_secret({"X_FILE": str(tmp_path / "empty")}, "X")


def test_the_shadow_key_must_be_long_enough_and_the_error_hides_it() -> None:
    assert shadow_key({"STRANGLER_SHADOW_KEY": "a" * 32}) == b"a" * 32
    assert shadow_key({}) is None
    with pytest.raises(SecretError, match="at least 32 characters") as raised:
        shadow_key({"STRANGLER_SHADOW_KEY": "hunter2-hunter2"})
    assert "hunter2" not in str(raised.value)
