"""Whether the watcher must read routes.yaml this tick, or may trust that it has not changed. Pure:
signatures and times come in, a reason to read (or None) goes out.

A signature is what one `stat` of the path says of the file it resolves to now: (st_dev, st_ino,
st_size, st_mtime_ns, st_ctime_ns). An edit in place moves the size or the times (ctime cannot be set
back from user space, so `cp -p` and `touch -r` are seen too); a file renamed into place, or a
ConfigMap's `..data` symlink swapped, resolves to another inode. The file is read when the signature
differs from the one taken just before the last good read, on every tick while a change settles (the
settle logic needs a look per tick, and stays exactly what it was), and every `backstop_s` whatever the
signature says: an edit that keeps the size within one timestamp tick (1-2 s on FAT, HFS+, ext3 and some
NFS servers or FUSE filesystems; a few ms on ext4, xfs, btrfs, tmpfs) shows the same signature.

Owns neither the stat (filestat.py), the read (watch.look) nor when a content goes live (config/settle.py).
"""

from __future__ import annotations

from typing import Literal

__all__ = ["BACKSTOP_S", "Gate", "Reason", "Signature"]

Signature = tuple[int, int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns
Reason = Literal["first", "changed", "settling", "backstop"]

# A read every 30 s costs 1/60 of the old reads every 0.5 s; an edit the signature hides (a same-size
# rewrite within one coarse timestamp tick) is still applied within about 30 s plus the settle time,
# sooner than a ConfigMap update reaches a pod (the kubelet's sync period and cache: about a minute).
BACKSTOP_S = 30.0


class Gate:
    """Decides, tick by tick, whether the file must be read; told of every good read and every failure."""

    def __init__(self, backstop_s: float = BACKSTOP_S) -> None:
        if not backstop_s > 0:
            raise ValueError("backstop_s must be a number of seconds, more than 0")
        self.backstop_s = backstop_s
        self._read: Signature | None = None  # taken just before the last good read; None: read next tick
        self._due = 0.0  # the next backstop read

    def must_read(self, signature: Signature, *, now: float, settling: bool) -> Reason | None:
        """`settling`: a changed content waits to settle, and needs a look every tick."""
        if self._read is None:
            return "first"
        if signature != self._read:
            return "changed"
        if settling:
            return "settling"
        if now >= self._due:
            return "backstop"
        return None

    def read(self, signature: Signature, *, now: float) -> None:
        """The file was read, after `signature` was taken: a change that raced the read shows next tick."""
        self._read = signature
        self._due = now + self.backstop_s

    def forget(self) -> None:
        """The read failed, or what it saw must be looked at again: read on the next tick."""
        self._read = None
