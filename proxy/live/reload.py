"""Live configuration: read, validate, compile, swap — or keep the last good table and say why.

Owns the current `Snapshot` (config + compiled table, replaced in one assignment so a request sees the
old table or the new one, never a mix) and the file watcher, which applies an edit only once it has
settled or was renamed into place (settle.py decides; this module reads the file). Owns neither the
schema (the config package) nor the routing rules (the routing package).
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from proxy.config import ConfigError, LoadedConfig
from proxy.config.loader import parse_bytes
from proxy.config.settle import Seen, Settler
from proxy.metrics import ProxyMetrics
from proxy.routing import RouteTable, compile_routes

__all__ = [
    "FD_SHORTAGE", "Clock", "ConfigStore", "Listener", "ReloadResult", "Snapshot", "first_look",
    "is_fd_shortage", "look", "watch",
]  # fmt: skip

_log = structlog.get_logger("proxy.live.reload")


@dataclass(frozen=True, slots=True)
class Snapshot:
    loaded: LoadedConfig
    table: RouteTable


@dataclass(frozen=True, slots=True)
class ReloadResult:
    ok: bool
    changed: bool
    trigger: str
    sha256: str  # of the configuration serving after the attempt
    errors: tuple[str, ...] = ()
    stale: bool = False  # the watcher's content changed again before it was read: nothing attempted


Listener = Callable[[Snapshot], None]


class ConfigStore:
    """Holds the serving snapshot; every reload attempt is serialized, counted and logged."""

    def __init__(self, loaded: LoadedConfig, *, metrics: ProxyMetrics | None = None) -> None:
        self.current = Snapshot(loaded, compile_routes(loaded.config))
        self.path = loaded.path
        self.last_errors: tuple[str, ...] = ()
        self._metrics = metrics
        self._listeners: list[Listener] = []
        self._lock = asyncio.Lock()
        if metrics is not None:
            metrics.initial_load(loaded.loaded_at)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` after every swap; returns the function that unsubscribes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def reload(self, trigger: str, *, expect_sha256: str | None = None) -> ReloadResult:
        """Read, validate and swap in the file. With `expect_sha256` (the watcher's settled content), a
        file whose bytes differ by now is left alone: `stale`, not an attempt, nothing counted."""
        async with self._lock:
            try:
                compiled = await asyncio.to_thread(_read_and_compile, self.path, expect_sha256)
            except ConfigError as exc:
                return self._failed(trigger, tuple(exc.errors) or (str(exc),))
            except OSError as exc:
                if is_fd_shortage(exc):
                    return self._failed(trigger, (f"{self.path}: cannot read: {FD_SHORTAGE}",), "fd_shortage")
                return self._failed(trigger, (f"{self.path}: cannot read: {exc.strerror or exc}",))
            except Exception as exc:  # a bug in compilation must not take the serving table down
                _log.exception("config_reload_crashed", path=self.path, trigger=trigger)
                return self._failed(trigger, (f"{self.path}: {type(exc).__name__}: {exc}",))
            if compiled is None:
                _log.info(
                    "config_reload_skipped",
                    path=self.path,
                    trigger=trigger,
                    expected_sha256=expect_sha256,
                    reason="the file changed again while it was read; it settles anew",
                )
                sha = self.current.loaded.sha256
                return ReloadResult(ok=True, changed=False, trigger=trigger, sha256=sha, stale=True)
            loaded, table = compiled
            previous = self.current
            changed = loaded.sha256 != previous.loaded.sha256
            if changed:
                self.current = Snapshot(loaded, table)
                for listener in list(self._listeners):
                    try:
                        listener(self.current)
                    except Exception:
                        _log.exception("config_listener_failed", listener=repr(listener))
            self.last_errors = ()
            if self._metrics is not None:
                self._metrics.reload_attempt(ok=True, at=time.time())
            _log.info(
                "config_reloaded" if changed else "config_unchanged",
                path=self.path,
                trigger=trigger,
                sha256=self.current.loaded.sha256,
                previous_sha256=previous.loaded.sha256,
            )
            return ReloadResult(ok=True, changed=changed, trigger=trigger, sha256=self.current.loaded.sha256)

    def _failed(self, trigger: str, errors: tuple[str, ...], cause: str = "invalid") -> ReloadResult:
        self.last_errors = errors
        if self._metrics is not None:
            self._metrics.reload_attempt(ok=False, at=time.time())
        _log.error(
            "config_reload_failed",
            path=self.path,
            trigger=trigger,
            cause=cause,
            errors=list(errors),
            serving_sha256=self.current.loaded.sha256,
        )
        return ReloadResult(
            ok=False, changed=False, trigger=trigger, sha256=self.current.loaded.sha256, errors=errors
        )


FD_SHORTAGE = (
    "the process is out of file descriptors (EMFILE/ENFILE): raise its open-file limit (ulimit -n, "
    "systemd LimitNOFILE=) or lower limits.max_connections"
)


def is_fd_shortage(exc: OSError) -> bool:
    """Out of descriptors (per process or system-wide): says nothing about the file itself."""
    return exc.errno in (errno.EMFILE, errno.ENFILE)


def _read_and_compile(path: str, expect_sha256: str | None) -> tuple[LoadedConfig, RouteTable] | None:
    """What proxy.config.load_config does, from one read whose digest is checked first (None: it differs);
    an OSError is raised as is, so running out of descriptors is not mistaken for a bad file."""
    raw = Path(path).read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if expect_sha256 is not None and digest != expect_sha256:
        return None
    loaded = parse_bytes(raw, path, sha256=digest)
    return loaded, compile_routes(loaded.config)


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
    metrics: ProxyMetrics | None = None,
    clock: Clock = time.monotonic,
    reader: Callable[[str], Seen] = look,
    first: Seen | None = None,
) -> None:
    """Look at the file every `interval_s`; apply a changed content once it has stayed the same for
    `settle_s`, or at once when it was renamed into place (settle.py).

    Hashing the content (rather than trusting mtimes) notices in-place edits, editors that replace the
    file, and Kubernetes ConfigMaps that swap a `..data` symlink in the directory, alike. A broken edit
    is attempted once, not every poll: the next attempt waits for the content to change again. A file
    that cannot be read is said once (and an fd shortage is said as such, never as an unreadable file);
    the last good config keeps serving. `first`: a look taken when the watch was set up (see first_look),
    the file a later rename is told apart from; without it, the first poll's look is that.
    """
    path = os.fspath(store.path)
    settler = Settler(settle_s)
    if first is not None:
        settler.observe(first, now=clock(), serving=store.current.loaded.sha256)
    trouble: str | None = None  # "unreadable" or "fd_shortage" while the file cannot be read
    while True:
        await asyncio.sleep(interval_s)
        try:
            try:
                seen = await asyncio.to_thread(reader, path)
            except OSError as exc:
                kind = "fd_shortage" if is_fd_shortage(exc) else "unreadable"
                if kind != trouble:  # said once, not every poll
                    trouble = kind
                    _said_unreadable(path, kind, exc, metrics)
                continue
            trouble = None
            verdict = settler.observe(seen, now=clock(), serving=store.current.loaded.sha256)
            if verdict.superseded:  # a state of the file that was never applied (an edit in progress)
                _watch_event(metrics, "superseded")
            if verdict.started:
                _log.info("config_change_settling", path=path, sha256=seen.digest, settle_s=settle_s)
            if verdict.reason is None:
                continue
            result = await store.reload("watch", expect_sha256=seen.digest)
            if not result.stale:
                settler.tried(seen.digest)
            if result.ok and not result.stale:
                _watch_event(metrics, verdict.reason)  # how the applied content came: settled or renamed
        except Exception:  # the watcher must outlive any surprise; the next poll tries again
            _log.exception("config_watch_failed", path=path)


def _said_unreadable(path: str, kind: str, exc: OSError, metrics: ProxyMetrics | None) -> None:
    _watch_event(metrics, kind)
    if kind == "fd_shortage":
        _log.error("config_watch_fd_shortage", path=path, error=exc.strerror, detail=FD_SHORTAGE)
    else:
        _log.warning("config_file_unreadable", path=path, error=exc.strerror)


def _watch_event(metrics: ProxyMetrics | None, event: str) -> None:
    if metrics is not None:
        metrics.config_watch_event(event)
