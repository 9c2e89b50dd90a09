"""Where the controller reads and writes routes.yaml and keeps its state: the Target port, and the file.

Owns: the Target protocol (the routes text, a compare-and-swap write of it, the controller's JSON state),
Conflict (the text changed since it was read), FileTarget (routes.yaml on a file system, the state beside
it) and parse_target (`configmap:NS/NAME` or a path). Does not own the Kubernetes target (configmap.py)
nor what the text or the state mean (proxy/rollout).

FileTarget writes the way an operator should: the whole new text into a temporary file in the same
directory, the old file's mode (and owner, where allowed), fsync, then one rename over the old file, so a
reader (the proxy's watcher) sees the old text or the new one, never a mix, and applies it at once (a
file renamed into place is settled; _marked_as_renamed makes sure the watcher can tell). The
compare-and-swap re-reads the file right before the rename: an operator's edit since the controller read
it is a Conflict and nothing is written (a human editing in the last microseconds before the rename can
still lose; no file lock would stop an editor that does not take it). A failed write leaves no temporary
file behind. Text is read and written as UTF-8 bytes, line endings untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Protocol

__all__ = ["STATE_SUFFIX", "Conflict", "FileTarget", "Target", "parse_target"]

STATE_SUFFIX = ".rollout.json"  # the controller's state beside the routes file: routes.yaml.rollout.json
_NEW_FILE_MODE = 0o644  # a state file that does not exist yet


class Conflict(Exception):
    """The target changed since it was read (an operator's edit): nothing written."""


class Target(Protocol):
    description: str

    async def read(self) -> str: ...

    async def write(self, text: str, *, expected: str) -> None: ...

    async def load_state(self) -> str | None: ...

    async def save_state(self, text: str) -> None: ...


class FileTarget:
    """routes.yaml on a local file system; the controller's state in `<routes file>.rollout.json`."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.state_path = self.path.with_name(self.path.name + STATE_SUFFIX)
        self.description = f"file:{self.path}"

    async def read(self) -> str:
        return await asyncio.to_thread(_read, self.path)

    async def write(self, text: str, *, expected: str) -> None:
        await asyncio.to_thread(_replace, self.path, text, expected)

    async def load_state(self) -> str | None:
        try:
            return await asyncio.to_thread(_read, self.state_path)
        except FileNotFoundError:
            return None

    async def save_state(self, text: str) -> None:
        await asyncio.to_thread(_replace, self.state_path, text, None)


def parse_target(spec: str) -> Target:
    """`configmap:NAMESPACE/NAME` (the routes.yaml key of a ConfigMap), else a path (`file:` optional)."""
    if spec.startswith("configmap:"):
        from proxy.controller.configmap import ConfigMapTarget  # the kubernetes client only when asked

        namespace, slash, name = spec.removeprefix("configmap:").partition("/")
        if not (namespace and slash and name) or "/" in name:
            raise ValueError(f"{spec!r}: a ConfigMap target is configmap:NAMESPACE/NAME")
        return ConfigMapTarget(namespace, name)
    path = spec.removeprefix("file:")
    if not path:
        raise ValueError("the routes file target needs a path")
    return FileTarget(path)


def _read(path: Path) -> str:
    return path.read_bytes().decode("utf-8")  # bytes: no newline translation, every byte as it is


def _replace(path: Path, text: str, expected: str | None) -> None:
    """Write `text` to `path` by rename; with `expected`, only if the file still holds it (else Conflict).
    A symlinked path keeps its link: the file it points at is the one replaced."""
    real = Path(os.path.realpath(path))
    try:
        before: os.stat_result | None = real.stat()
    except FileNotFoundError:
        if expected is not None:
            raise Conflict(f"{path} is gone: nothing written") from None
        before = None
    fd, temporary = tempfile.mkstemp(dir=real.parent, prefix=f".{real.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(text.encode("utf-8"))
            out.flush()
            _same_mode_and_owner(out.fileno(), before)
            _marked_as_renamed(out.fileno())
            os.fsync(out.fileno())
        if expected is not None and _read(real) != expected:
            raise Conflict(f"{path} changed since it was read (an operator's edit?): nothing written")
        os.replace(temporary, real)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _sync_directory(real.parent)


def _same_mode_and_owner(fd: int, before: os.stat_result | None) -> None:
    os.fchmod(fd, stat.S_IMODE(before.st_mode) if before is not None else _NEW_FILE_MODE)
    if before is not None and (before.st_uid, before.st_gid) != (os.geteuid(), os.getegid()):
        with contextlib.suppress(PermissionError):  # only root may give a file away; the mode is kept
            os.fchown(fd, before.st_uid, before.st_gid)


def _marked_as_renamed(fd: int) -> None:
    """Its last change strictly after its last write (ctime > mtime), as the proxy's watcher tells a file
    renamed into place (applied at once) from one edited in place (applied once settled): the kernel's
    coarse clock often gives the write, the chmod and the rename the same timestamp, so the mtime is set
    back by one nanosecond (and setting it is itself a change, stamped now)."""
    info = os.fstat(fd)
    os.utime(fd, ns=(info.st_atime_ns, info.st_mtime_ns - 1))


def _sync_directory(directory: Path) -> None:
    """The rename itself reaches the disk only with its directory (a crash would otherwise undo it)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
