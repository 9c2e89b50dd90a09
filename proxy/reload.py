"""Live configuration: read, validate, compile, swap — or keep the last good table and say why.

Owns the current `Snapshot` (config + compiled table, replaced in one assignment so a request sees the
old table or the new one, never a mix) and the file watcher. Owns neither the schema (config.py) nor
the routing rules (routing.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from proxy.config import ConfigError, LoadedConfig, load_config
from proxy.metrics import ProxyMetrics
from proxy.routing import RouteTable, compile_routes

_log = structlog.get_logger("proxy.reload")


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


Listener = Callable[[Snapshot], None]


def effective_percents(table: RouteTable) -> list[tuple[str, float]]:
    """A route without a candidate sends nothing to one, whatever it says."""
    return [(route.name, float(route.percent) if route.candidate else 0.0) for route in table.routes]


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
            metrics.set_rollout(effective_percents(self.current.table))

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` after every swap; returns the function that unsubscribes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def reload(self, trigger: str) -> ReloadResult:
        async with self._lock:
            try:
                loaded, table = await asyncio.to_thread(_load_and_compile, self.path)
            except ConfigError as exc:
                return self._failed(trigger, tuple(exc.errors) or (str(exc),))
            except OSError as exc:
                return self._failed(trigger, (f"{self.path}: cannot read: {exc.strerror or exc}",))
            except Exception as exc:  # a bug in compilation must not take the serving table down
                _log.exception("config_reload_crashed", path=self.path, trigger=trigger)
                return self._failed(trigger, (f"{self.path}: {type(exc).__name__}: {exc}",))
            previous = self.current
            changed = loaded.sha256 != previous.loaded.sha256
            if changed:
                self.current = Snapshot(loaded, table)
                if self._metrics is not None:  # before the listeners: a tripped guard then sets its 0
                    self._metrics.set_rollout(effective_percents(table))
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

    def _failed(self, trigger: str, errors: tuple[str, ...]) -> ReloadResult:
        self.last_errors = errors
        if self._metrics is not None:
            self._metrics.reload_attempt(ok=False, at=time.time())
        _log.error(
            "config_reload_failed",
            path=self.path,
            trigger=trigger,
            errors=list(errors),
            serving_sha256=self.current.loaded.sha256,
        )
        return ReloadResult(
            ok=False, changed=False, trigger=trigger, sha256=self.current.loaded.sha256, errors=errors
        )


def _load_and_compile(path: str) -> tuple[LoadedConfig, RouteTable]:
    loaded = load_config(path)
    return loaded, compile_routes(loaded.config)


def file_digest(path: str) -> str | None:
    """sha256 of what `path` resolves to now (symlinks followed), or None while it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return None


async def watch(store: ConfigStore, *, interval_s: float = 0.5) -> None:
    """Poll the file's content hash and reload when it differs from what was last seen.

    Hashing the content (rather than trusting mtimes) notices in-place edits, editors that replace the
    file, and Kubernetes ConfigMaps that swap a `..data` symlink in the directory, alike. A broken edit
    is attempted once, not every poll: the next attempt waits for the content to change again.
    """
    path = os.fspath(store.path)
    last_seen = store.current.loaded.sha256
    unreadable = False
    while True:
        await asyncio.sleep(interval_s)
        try:
            digest = await asyncio.to_thread(file_digest, path)
            if (digest is None) != unreadable:
                unreadable = digest is None
                if unreadable:  # said once, not every poll; the last good config keeps serving
                    _log.warning("config_file_unreadable", path=path)
            if digest is None or digest == last_seen:
                continue
            last_seen = digest
            if digest == store.current.loaded.sha256:
                continue  # reloaded already (SIGHUP, admin), or reverted to what is serving
            await store.reload("watch")
        except Exception:  # the watcher must outlive any surprise; the next poll tries again
            _log.exception("config_watch_failed", path=path)
