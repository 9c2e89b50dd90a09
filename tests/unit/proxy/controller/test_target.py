"""FileTarget: a compare-and-swap write by rename that keeps the file's mode, leaves no temporary file
behind, and never writes over an edit made since the text was read; the state beside it; parse_target."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from proxy.config.settle import Settler
from proxy.controller import target as target_module
from proxy.controller.configmap import ConfigMapTarget
from proxy.controller.target import Conflict, FileTarget, parse_target
from proxy.live.watch import look

TEXT = "version: 1\r\n# a comment, CRLF line endings kept\r\nrate: 5\r\n"


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


@pytest.fixture
def routes(tmp_path: Path) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_bytes(TEXT.encode())
    path.chmod(0o640)
    return path


async def test_a_write_replaces_the_file_by_rename_with_its_mode_kept_and_every_byte_as_given(
    routes: Path,
) -> None:
    target = FileTarget(routes)
    inode = routes.stat().st_ino
    old = await target.read()

    await target.write(old.replace("rate: 5", "rate: 25"), expected=old)

    assert routes.read_bytes() == TEXT.replace("rate: 5", "rate: 25").encode()  # \r\n untouched
    assert stat.S_IMODE(routes.stat().st_mode) == 0o640
    assert routes.stat().st_ino != inode  # renamed into place: the proxy applies it at once
    assert leftovers(routes.parent) == []
    assert target.description == f"file:{routes}"


async def test_the_proxys_watcher_applies_a_write_at_once_as_a_file_renamed_into_place(routes: Path) -> None:
    target, settler = FileTarget(routes), Settler(settle_s=3600)
    for _ in range(20):  # the kernel's coarse clock: every write, not only a lucky one
        serving = hashlib.sha256(routes.read_bytes()).hexdigest()
        assert settler.observe(look(str(routes)), now=0, serving=serving).action == "none"
        old = await target.read()
        await target.write(old + "# one more line\n", expected=old)

        verdict = settler.observe(look(str(routes)), now=0, serving=serving)

        assert (verdict.action, verdict.reason) == ("apply", "renamed")
        settler.tried(hashlib.sha256(routes.read_bytes()).hexdigest())


async def test_an_edit_since_the_read_is_a_conflict_and_the_operators_text_stays(routes: Path) -> None:
    target = FileTarget(routes)
    old = await target.read()
    routes.write_text("version: 1\nrate: 7  # the operator's\n")

    with pytest.raises(Conflict, match="changed since it was read"):
        await target.write(old.replace("5", "25"), expected=old)

    assert routes.read_text() == "version: 1\nrate: 7  # the operator's\n"
    assert leftovers(routes.parent) == []


async def test_an_edit_landing_while_the_new_text_is_written_is_caught_by_the_check_before_the_rename(
    routes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = FileTarget(routes)
    old = await target.read()
    real_fsync = os.fsync

    def operator_saves_meanwhile(fd: int) -> None:
        real_fsync(fd)
        if not routes.read_text().startswith("# edited"):
            routes.write_text("# edited by hand\n" + old)

    monkeypatch.setattr(target_module.os, "fsync", operator_saves_meanwhile)

    with pytest.raises(Conflict):
        await target.write(old.replace("5", "25"), expected=old)

    assert routes.read_text().startswith("# edited by hand")
    assert leftovers(routes.parent) == []


async def test_a_failed_rename_leaves_the_old_file_and_no_temporary_file(
    routes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(target_module.os, "replace", full_disk)
    target = FileTarget(routes)
    old = await target.read()

    with pytest.raises(OSError, match="No space left"):
        await target.write("anything", expected=old)

    assert routes.read_bytes() == TEXT.encode()
    assert leftovers(routes.parent) == []


async def test_a_file_gone_since_the_read_is_a_conflict(routes: Path) -> None:
    target = FileTarget(routes)
    old = await target.read()
    routes.unlink()

    with pytest.raises(Conflict, match="gone"):
        await target.write(old, expected=old)
    assert list(routes.parent.iterdir()) == []


async def test_a_symlinked_routes_file_keeps_its_link_and_the_file_it_points_at_is_replaced(
    tmp_path: Path, routes: Path
) -> None:
    link = tmp_path / "current.yaml"
    link.symlink_to(routes.name)
    target = FileTarget(link)
    old = await target.read()

    await target.write(old.replace("5", "50"), expected=old)

    assert link.is_symlink()
    assert routes.read_bytes() == TEXT.replace("5", "50").encode()


async def test_the_state_lives_beside_the_routes_file_and_is_none_until_saved(routes: Path) -> None:
    target = FileTarget(routes)
    assert await target.load_state() is None

    await target.save_state('{"version": 1, "routes": {}}\n')
    await target.save_state('{"version": 1, "routes": {"images": {}}}\n')

    assert target.state_path == routes.parent / "routes.yaml.rollout.json"
    assert await target.load_state() == '{"version": 1, "routes": {"images": {}}}\n'
    assert stat.S_IMODE(target.state_path.stat().st_mode) == 0o644
    assert leftovers(routes.parent) == []


def test_a_target_is_a_configmap_when_it_says_so_and_a_path_otherwise(tmp_path: Path) -> None:
    found = parse_target("configmap:strangler/proxy-routes")
    assert isinstance(found, ConfigMapTarget)
    assert "strangler/proxy-routes" in found.description
    assert isinstance(parse_target(str(tmp_path / "routes.yaml")), FileTarget)
    assert parse_target(f"file:{tmp_path}/r.yaml").description == f"file:{tmp_path}/r.yaml"


@pytest.mark.parametrize("spec", ["configmap:", "configmap:ns", "configmap:/a", "configmap:ns/a/b", "file:"])
def test_a_malformed_target_is_refused_with_the_expected_form(spec: str) -> None:
    with pytest.raises(ValueError, match=r"configmap:NAMESPACE/NAME|needs a path"):
        parse_target(spec)
