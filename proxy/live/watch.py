"""The file watcher: applies an edit of routes.yaml once it has settled or was renamed into place
(config/settle.py decides; this module reads the file), and reads it only when a stat says it may have
changed (gate.py decides, filestat.py takes the stat). The reload itself is the ConfigStore's.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Callable

import structlog

from proxy.config.settle import Seen, Settler
from proxy.live.filestat import Stats, signature
from proxy.live.gate import BACKSTOP_S, Gate, Signature
from proxy.live.reload import FD_SHORTAGE, ConfigStore, is_fd_shortage
from proxy.metrics import ProxyMetrics

__all__ = ["Clock", "first_look", "look", "watch"]

_log = structlog.get_logger("proxy.live.reload")

def look(path: str) -> Seen:
    """Read the file `path` resolves to now (symlinks followed): its digest, and which file it was.
    The identity comes from the open descriptor, so it is the identity of the bytes that were read."""
    realpath = os.path.realpath(path)
    with open(path, "rb") as handle:
        info = os.fstat(handle.fileno())
        digest = hashlib.sha256(handle.read()).hexdigest()
    return Seen(digest, realpath, (info.st_dev, info.st_ino), info.st_ctime_ns > info.st_mtime_ns)


async def first_look(path: str) -> Seen | None:
    """The file as the watch starts (None: unreadable now), awaited before serving begins."""
    try:
        return await asyncio.to_thread(look, path)
    except OSError:
        return None


Clock = Callable[[], float]


async def watch(
    store: ConfigStore,
    *,
    interval_s: float = 0.5,
    settle_s: float = 2.0,
    backstop_s: float = BACKSTOP_S,
    metrics: ProxyMetrics | None = None,
    clock: Clock = time.monotonic,
    reader: Callable[[str], Seen] = look,
    stat: Callable[[str], Signature] = signature,
    stat_on_loop: bool | None = None,
    first: Seen | None = None,
) -> None:
    """Check the file every `interval_s`; apply a changed content once it has stayed the same for
    `settle_s`, or at once when it was renamed into place (settle.py).

    A check is one `stat` of the path (symlinks followed), compared with the one taken before the last
    read (gate.py): the file is read and hashed (`reader`, in a thread) only when that signature moved,
    on every check while a change settles, and every `backstop_s` (30 s) in any case, which catches an
    edit that kept its size within one tick of a coarse-grained timestamp (FAT, HFS+, ext3, some NFS).
    The stat runs on the loop for a file on a local filesystem and in a thread otherwise (filestat.py;
    `stat_on_loop` forces either). Hashing the content (rather than trusting mtimes) decides what
    changed: in-place edits, editors that replace the file, and Kubernetes ConfigMaps that swap a
    `..data` symlink in the directory, alike. A broken edit is attempted once, not every check: the
    next attempt waits for the content to change again. A file that cannot be stat'ed or read is said
    once (and an fd shortage is said as such, never as an unreadable file); the last good config keeps
    serving. `first`: a look taken when the watch was set up (see first_look), the file a later rename
    is told apart from; without it, the first check's look is that. The first check always reads.
    """
    path = os.fspath(store.path)
    stats = Stats(path, stat=stat, on_loop=stat_on_loop)
    check = _Check(store, path, Settler(settle_s), Gate(backstop_s), stats, metrics=metrics, clock=clock,
                   reader=reader)  # fmt: skip
    if first is not None:
        check.settler.observe(first, now=clock(), serving=store.current.loaded.sha256)
        check.digest = first.digest
    while True:
        await asyncio.sleep(interval_s)
        try:
            await check()
        except Exception:  # the watcher must outlive any surprise; the next check reads and tries again
            check.gate.forget()
            _log.exception("config_watch_failed", path=path)


class _Check:
    """One check of the watch, and what the checks remember between them."""

    def __init__(
        self, store: ConfigStore, path: str, settler: Settler, gate: Gate, stats: Stats, *,
        metrics: ProxyMetrics | None, clock: Clock, reader: Callable[[str], Seen],
    ) -> None:  # fmt: skip
        self.store, self.path, self.settler, self.gate, self.stats = store, path, settler, gate, stats
        self.metrics, self.clock, self.reader = metrics, clock, reader
        self.trouble: str | None = None  # "unreadable" or "fd_shortage" while the file cannot be read
        self.settling = False  # a changed content waits to settle: it is looked at every check
        self.digest: str | None = None  # of the last read

    async def __call__(self) -> None:
        gate, clock, path, metrics = self.gate, self.clock, self.path, self.metrics
        try:
            taken = await self.stats.take()
            why = gate.must_read(taken, now=clock(), settling=self.settling)
            if why is None:
                return
            seen = await asyncio.to_thread(self.reader, path)
        except OSError as exc:
            gate.forget()
            kind = "fd_shortage" if is_fd_shortage(exc) else "unreadable"
            if kind != self.trouble:  # said once, not every check
                self.trouble = kind
                _said_unreadable(path, kind, exc, metrics)
            return
        gate.read(taken, now=clock())
        self.trouble = None
        if why == "backstop" and seen.digest != self.digest:
            _log.warning(
                "config_change_missed_by_stat", path=path, sha256=seen.digest, backstop_s=gate.backstop_s,
                detail="the content changed but its size and times did not (coarse timestamps?)",
            )  # fmt: skip
        self.digest = seen.digest
        await self._settle(seen)

    async def _settle(self, seen: Seen) -> None:
        store, metrics = self.store, self.metrics
        verdict = self.settler.observe(seen, now=self.clock(), serving=store.current.loaded.sha256)
        self.settling = verdict.action == "wait"
        if verdict.superseded:  # a state of the file that was never applied (an edit in progress)
            _watch_event(metrics, "superseded")
        if verdict.started:
            _log.info("config_change_settling", path=self.path, sha256=seen.digest,
                      settle_s=self.settler.settle_s)  # fmt: skip
        if verdict.reason is None:
            return
        result = await store.reload("watch", expect_sha256=seen.digest)
        if result.stale:  # it changed again while it was read: look again, whatever the stat says
            self.gate.forget()
        else:
            self.settler.tried(seen.digest)
        if result.ok and not result.stale:
            _watch_event(metrics, verdict.reason)  # how the applied content came: settled or renamed


def _said_unreadable(path: str, kind: str, exc: OSError, metrics: ProxyMetrics | None) -> None:
    _watch_event(metrics, kind)
    if kind == "fd_shortage":
        _log.error("config_watch_fd_shortage", path=path, error=exc.strerror, detail=FD_SHORTAGE)
    else:
        _log.warning("config_file_unreadable", path=path, error=exc.strerror)


def _watch_event(metrics: ProxyMetrics | None, event: str) -> None:
    if metrics is not None:
        metrics.config_watch_event(event)
