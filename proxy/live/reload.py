"""Live configuration: read, validate, compile, swap — or keep the last good table and say why.

Owns the current `Snapshot` (config + compiled table, replaced in one assignment so a request sees the
old table or the new one, never a mix) and every reload attempt (SIGHUP, POST /reload, the file
watcher of watch.py). Owns neither the schema (the config package) nor the routing rules (the routing
package).
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from proxy.config import ConfigError, LoadedConfig
from proxy.config.loader import parse_bytes
from proxy.metrics import ProxyMetrics
from proxy.routing import RouteTable, compile_routes

__all__ = ["FD_SHORTAGE", "ConfigStore", "Listener", "ReloadResult", "Snapshot", "is_fd_shortage"]

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
