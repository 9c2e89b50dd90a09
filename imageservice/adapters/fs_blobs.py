"""Local blob storage: one file per image under a folder; writes are atomic (temp file + rename).

Names are checked twice: they must be plain file names, and the resolved path must stay inside the
folder. Leftover temp files of a crash show up in `list_blobs`, so `reconcile` removes them too.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from imageservice.domain.ports import BlobInfo

__all__ = ["FsBlobStore", "UnsafeName"]


class UnsafeName(ValueError):
    pass


class FsBlobStore:
    def __init__(self, root: Path) -> None:
        self._root = root.resolve()

    def ensure(self) -> None:
        self._root.mkdir(parents=True, exist_ok=True)

    def _path(self, name: str) -> Path:
        if not name or name in {".", ".."} or "/" in name or "\\" in name or "\x00" in name:
            raise UnsafeName(f"not a plain file name: {name!r}")
        path = (self._root / name).resolve()
        if path.parent != self._root:
            raise UnsafeName(f"name escapes the storage folder: {name!r}")
        return path

    async def put(self, name: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(self._put, self._path(name), data)

    def _put(self, path: Path, data: bytes) -> None:
        fd, temp = tempfile.mkstemp(dir=self._root, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    async def get(self, name: str) -> bytes | None:
        try:
            path = self._path(name)
        except UnsafeName:
            return None
        try:
            return await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, IsADirectoryError):
            return None

    async def delete(self, name: str) -> None:
        path = self._path(name)
        await asyncio.to_thread(path.unlink, missing_ok=True)

    async def list_blobs(self) -> list[BlobInfo]:
        return await asyncio.to_thread(self._list)

    def _list(self) -> list[BlobInfo]:
        infos = []
        for entry in os.scandir(self._root):
            if entry.is_file(follow_symlinks=False):
                infos.append(BlobInfo(entry.name, entry.stat(follow_symlinks=False).st_mtime))
        return sorted(infos, key=lambda info: info.name)
