"""The local blob store: names never escape the folder, and writes are all or nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imageservice.adapters.fs_blobs import FsBlobStore, UnsafeName


@pytest.fixture
def store(tmp_path: Path) -> FsBlobStore:
    blobs = FsBlobStore(tmp_path / "images")
    blobs.ensure()
    return blobs


@pytest.mark.parametrize("name", ["../escape.png", "a/b.png", "..", ".", "", "x\x00.png", "..\\x.png"])
async def test_a_name_that_could_escape_the_folder_is_refused(
    store: FsBlobStore, tmp_path: Path, name: str
) -> None:
    with pytest.raises(UnsafeName):
        await store.put(name, b"data", "image/png")
    assert await store.get(name) is None
    assert not (tmp_path / "escape.png").exists()


async def test_a_symlink_pointing_outside_is_not_followed(store: FsBlobStore, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("outside")
    os.symlink(secret, tmp_path / "images" / "link.png")

    assert await store.get("link.png") is None


async def test_a_failed_write_leaves_neither_a_partial_file_nor_a_temp_file(
    store: FsBlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        await store.put("img.png", b"data", "image/png")

    assert list((tmp_path / "images").iterdir()) == []


async def test_an_overwrite_replaces_the_whole_file_and_delete_is_idempotent(store: FsBlobStore) -> None:
    await store.put("a.png", b"first version, longer", "image/png")
    await store.put("a.png", b"second", "image/png")

    assert await store.get("a.png") == b"second"
    assert [blob.name for blob in await store.list_blobs()] == ["a.png"]
    await store.delete("a.png")
    await store.delete("a.png")
    assert await store.get("a.png") is None
