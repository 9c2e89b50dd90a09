"""make run's key: generated once, private to its owner, kept across runs, never printed."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from strangler_common.devkey import ensure_key, main


def test_a_key_is_generated_once_and_then_kept(tmp_path: Path) -> None:
    path = tmp_path / "var" / "shadow.key"
    assert ensure_key(path)
    first = path.read_text()
    assert len(first.strip()) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not ensure_key(path)
    assert path.read_text() == first


def test_an_empty_file_gets_a_key(tmp_path: Path) -> None:
    path = tmp_path / "shadow.key"
    path.write_text("\n")
    assert ensure_key(path)
    assert len(path.read_text().strip()) == 64


def test_the_command_names_the_file_but_never_prints_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "shadow.key"
    assert main([str(path)]) == 0
    out = capsys.readouterr()
    assert f"{path} (generated)" in out.err
    assert path.read_text().strip() not in out.err + out.out
    assert main([]) == 2
