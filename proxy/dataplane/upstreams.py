"""Connection pools to the upstreams, and the readiness probe.

Owns one proxy.upstream.Pool (one keep-alive pool, protocol-level) per upstream, and in front of it the
upstream's Slots:
at most `max_connections` requests in flight, a request that finds none free waits `queue_timeout_s`
and then gets UpstreamBusy (503). On reload, pools for new or re-pointed upstreams are created and
those for removed or re-pointed ones (or a changed ca_bundle) are retired: a retired pool closes once
the last request that leased it finishes, so a reload never cuts an in-flight request. Timeouts are per
request (they come from the table the request started with), not per pool. A WebSocket upgrade
takes a slot too; its connection is its own (dataplane/websocket.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field

import structlog
from yarl import URL

from proxy.client import UpstreamError
from proxy.resilience.slots import Slots
from proxy.routing import UpstreamSpec
from proxy.upstream import Pool

__all__ = ["Reachability", "ReadinessProbe", "UpstreamBusy", "UpstreamSessions"]

_log = structlog.get_logger("proxy.dataplane.upstreams")


class UpstreamBusy(UpstreamError):
    """Every slot of the upstream stayed busy for its queue timeout: nothing was sent (503)."""

    def __init__(self, upstream: str, limit: int) -> None:
        detail = f"upstream {upstream!r} is busy: all {limit} connections in use"
        super().__init__("busy", timeout=False, detail=detail)
        self.upstream = upstream

    @property
    def status(self) -> int:
        return 503

    @property
    def code(self) -> str:
        return "upstream_busy"


class Lease:
    """One request's hold on an upstream: a slot of its cap, and its pool kept open (a retired pool
    closes once its last lease ends). A plain class, not a generator-based context manager: it is
    entered on every proxied request."""

    __slots__ = ("_entry", "_held", "_name", "_sessions")

    def __init__(self, sessions: UpstreamSessions, entry: _Entry, name: str) -> None:
        self._sessions, self._entry, self._name = sessions, entry, name
        self._held = False

    async def __aenter__(self) -> Pool:
        entry = self._entry
        entry.active += 1
        try:
            if not await entry.slots.acquire(entry.queue_timeout_s):
                raise UpstreamBusy(self._name, entry.slots.limit)
        except BaseException:
            self._leave()
            raise
        self._held = True
        return entry.pool

    async def __aexit__(self, *_: object) -> None:
        if self._held:
            self._held = False
            self._entry.slots.release()
        self._leave()

    def _leave(self) -> None:
        entry = self._entry
        entry.active -= 1
        if entry.retired and entry.active == 0:
            self._sessions._close_later(entry)


@dataclass(eq=False)
class _Entry:
    url: str
    ca_bundle: str | None
    pool: Pool
    slots: Slots
    queue_timeout_s: float
    active: int = 0
    retired: bool = False


@dataclass
class UpstreamSessions:
    """Upstream name → pool, kept in step with the route table by `sync`."""

    _entries: dict[str, _Entry] = field(default_factory=dict)
    _closing: set[asyncio.Task[None]] = field(default_factory=set)
    def sync(self, upstreams: Mapping[str, UpstreamSpec]) -> None:
        for name, spec in upstreams.items():
            entry = self._entries.get(name)
            if entry is None or entry.url != spec.url or entry.ca_bundle != spec.ca_bundle:
                if entry is not None:
                    self._retire(entry)
                slots = Slots(spec.max_connections)
                pool = Pool(spec.url, ca_bundle=spec.ca_bundle)
                self._entries[name] = _Entry(spec.url, spec.ca_bundle, pool, slots, spec.queue_timeout_s)
            else:  # same upstream: the cap and the queue follow the edit, the pool stays
                entry.slots.resize(spec.max_connections)
                entry.queue_timeout_s = spec.queue_timeout_s
        for name in [name for name in self._entries if name not in upstreams]:
            self._retire(self._entries.pop(name))

    def lease(self, name: str) -> Lease:
        """`async with sessions.lease(name) as pool`: the upstream's pool with one of its slots held;
        UpstreamBusy when none came free in time."""
        entry = self._entries.get(name)
        if entry is None:  # the table names an upstream sync() has not seen: a bug, not a client error
            raise LookupError(f"no pool for upstream {name!r}")
        return Lease(self, entry, name)

    def _retire(self, entry: _Entry) -> None:
        entry.retired = True
        if entry.active == 0:
            self._close_later(entry)

    def _close_later(self, entry: _Entry) -> None:
        task = asyncio.get_running_loop().create_task(entry.pool.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        entries = list(self._entries.values())
        self._entries.clear()
        await asyncio.gather(*(entry.pool.close() for entry in entries), *self._closing)


@dataclass(frozen=True, slots=True)
class Reachability:
    ok: bool
    upstreams: dict[str, str]  # name → "ok" or why not


class ReadinessProbe:
    """A cheap TCP connect to every upstream, cached briefly so /readyz cannot become a load generator."""

    def __init__(self, *, timeout_s: float = 1.0, cache_s: float = 2.0) -> None:
        self._timeout_s = timeout_s
        self._cache_s = cache_s
        self._cached: tuple[float, tuple[tuple[str, str], ...], Reachability] | None = None
        self._lock = asyncio.Lock()

    async def check(self, upstreams: Mapping[str, UpstreamSpec]) -> Reachability:
        key = tuple(sorted((name, spec.url) for name, spec in upstreams.items()))
        async with self._lock:
            now = time.monotonic()
            if self._cached is not None and self._cached[1] == key and now - self._cached[0] < self._cache_s:
                return self._cached[2]
            names = [name for name, _ in key]
            results = await asyncio.gather(*(self._probe(upstreams[name].url) for name in names))
            verdict = Reachability(
                ok=all(r == "ok" for r in results), upstreams=dict(zip(names, results, strict=True))
            )
            self._cached = (time.monotonic(), key, verdict)
            return verdict

    async def _probe(self, url: str) -> str:
        parsed = URL(url)
        host, port = parsed.host, parsed.port
        if host is None or port is None:
            return "no host or port in the upstream url"
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), self._timeout_s)
        except TimeoutError:
            return f"connect to {host}:{port} timed out"
        except OSError as exc:
            return f"connect to {host}:{port} failed: {exc.strerror or exc}"
        writer.close()
        with suppress(OSError):
            await writer.wait_closed()
        return "ok"
