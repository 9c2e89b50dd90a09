"""The watcher's cheap check: one `stat` of routes.yaml per tick, on the event loop when that is safe.

A stat of a file on a local filesystem is answered from the kernel's inode cache in about a
microsecond: on the loop it costs less than handing it to a thread (about 20 us, and two more wake-ups
of an idle process). On a network or user-space filesystem (NFS, SMB, FUSE, 9p, ...) a stat may be a
round trip to a server, and on a hard mount it blocks for as long as the server is away: a loop that
did it would stop serving. So the stat runs on the loop only when /proc/self/mountinfo says the file
is on a filesystem known to be local, and in a thread otherwise (another system, an unknown type). A
stat on the loop that ever takes longer than SLOW_STAT_S moves the stats to a thread for good.

Owns the signature of the path and where it is taken; not what it means (gate.py) nor the read.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

import structlog

from proxy.live.gate import Signature

__all__ = ["LOCAL_FILESYSTEMS", "SLOW_STAT_S", "Stats", "filesystem_of", "on_local_filesystem", "signature"]

# Block-device and memory filesystems of the local kernel: what their stat blocks on is a local disk.
LOCAL_FILESYSTEMS = frozenset({
    "ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "f2fs", "bcachefs", "jfs", "reiserfs", "nilfs2",
    "tmpfs", "ramfs", "overlay", "squashfs", "erofs", "iso9660", "vfat", "exfat", "ntfs3",
})  # fmt: skip
SLOW_STAT_S = 0.01
MOUNTINFO = "/proc/self/mountinfo"

_log = structlog.get_logger("proxy.live.filestat")


def signature(path: str) -> Signature:
    """One stat of the file `path` resolves to now (symlinks followed)."""
    info = os.stat(path)
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def filesystem_of(realpath: str, mountinfo: str) -> str | None:
    """The type of the filesystem mounted at the longest mount point that holds `realpath` (the last of
    the mounts stacked on it), from the text of /proc/self/mountinfo; None when no line says."""
    best: tuple[int, str] | None = None
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        if " - " not in line or len(fields) < 5:
            continue
        point = _unescape(fields[4])
        fstype = line.split(" - ", 1)[1].split(" ", 1)[0]
        under = point == "/" or realpath == point or realpath.startswith(point.rstrip("/") + "/")
        if under and (best is None or len(point) >= best[0]):
            best = (len(point), fstype)
    return None if best is None else best[1]


def on_local_filesystem(path: str) -> bool:
    """Whether `path` resolves to a file on a filesystem in LOCAL_FILESYSTEMS (False when unknown)."""
    try:
        with open(MOUNTINFO, encoding="utf-8", errors="replace") as handle:
            mountinfo = handle.read()
        return filesystem_of(os.path.realpath(path), mountinfo) in LOCAL_FILESYSTEMS
    except (OSError, ValueError):
        return False


class Stats:
    """Takes the path's signature, on the loop or in a thread (see the module's docstring)."""

    def __init__(self, path: str, *, stat: Callable[[str], Signature] = signature,
                 on_loop: bool | None = None) -> None:  # fmt: skip
        """`on_loop`: None decides from the filesystem, on the first `take`."""
        self.path = path
        self.on_loop = on_loop
        self._stat = stat

    async def take(self) -> Signature:
        """The signature now; an OSError is raised as is (the file is gone, or cannot be reached)."""
        if self.on_loop is None:
            self.on_loop = await asyncio.to_thread(on_local_filesystem, self.path)
            _log.debug("config_watch_stat", path=self.path, on_loop=self.on_loop)
        if not self.on_loop:
            return await asyncio.to_thread(self._stat, self.path)
        started = time.perf_counter()
        try:
            return self._stat(self.path)
        finally:
            took = time.perf_counter() - started
            if took > SLOW_STAT_S:
                self.on_loop = False
                _log.warning(
                    "config_watch_stat_slow", path=self.path, took_s=round(took, 4),
                    detail="the file's stats move off the event loop, to a thread, from now on",
                )  # fmt: skip


def _unescape(field: str) -> str:
    r"""mountinfo writes a space, tab, newline and backslash of a path as \040, \011, \012 and \134."""
    if "\\" not in field:
        return field
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field
