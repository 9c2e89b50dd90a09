"""File descriptors against `limits.max_connections`: the cap the front door enforces is one they can honour.

A proxied client connection needs up to two descriptors (its socket, and the upstream connection its
request holds); the process needs RESERVED_FDS more of its own (listeners, event loop, log, the config
file the watcher reads, admin connections, readiness probes, spooled bodies) plus one per shadow copy
that may be in flight. With fewer descriptors than that, accept() fails with EMFILE before the
connection cap is reached: the client sees a hang or a reset instead of `503 too_many_connections`,
and every open() in the process fails (the watcher would think the config file unreadable).

So, at start-up, the soft RLIMIT_NOFILE is raised to the hard limit where it is lower (`raise_nofile`,
the only I/O here); and the cap in force is `min(max_connections, (soft - reserve) // 2)`, said at
ERROR with the numbers and the fix when it is lower, re-evaluated on every reload (`ConnectionCap`).
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

import structlog

from proxy.metrics import ProxyMetrics
from proxy.routing import RouteTable

__all__ = [
    "FDS_PER_CONNECTION", "RESERVED_FDS", "ConnectionCap", "NoFile", "capacity", "needed", "raise_nofile",
    "reserve_of",
]  # fmt: skip

_log = structlog.get_logger("proxy.dataplane.fdlimit")
FDS_PER_CONNECTION = 2  # the client's socket and its request's upstream connection
RESERVED_FDS = 64  # the process's own: listeners, epoll, signal pipe, log, config file, admin, probes


@dataclass(frozen=True, slots=True)
class NoFile:
    soft: int | None  # None: unlimited
    hard: int | None
    raised_from: int | None = None  # the soft limit before raise_nofile raised it


def reserve_of(table: RouteTable) -> int:
    """Descriptors kept out of the client connections' share for this table."""
    shadow = sum(route.shadow.max_in_flight for route in table.shadowed.values() if route.shadow)
    return RESERVED_FDS + shadow


def capacity(soft: int | None, reserve: int) -> int | None:
    """How many client connections `soft` descriptors honour (None: no limit); at least 1."""
    if soft is None:
        return None
    return max(1, (soft - reserve) // FDS_PER_CONNECTION)


def needed(max_connections: int, reserve: int) -> int:
    return max_connections * FDS_PER_CONNECTION + reserve


def raise_nofile() -> NoFile:
    """Raise the soft open-file limit to the hard one (an unprivileged process may); never lower it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    unlimited = resource.RLIM_INFINITY
    current = NoFile(None if soft == unlimited else soft, None if hard == unlimited else hard)
    if current.soft is None or current.hard is None or current.soft >= current.hard:
        return current  # unlimited soft, or no finite hard limit to raise to (Linux always has one)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (current.hard, hard))
    except (ValueError, OSError) as exc:
        _log.warning("open_files_limit_not_raised", soft=current.soft, hard=current.hard, error=str(exc))
        return current
    _log.info("open_files_limit_raised", soft=current.hard, previous_soft=current.soft)
    return NoFile(current.hard, current.hard, raised_from=current.soft)


class ConnectionCap:
    """The client connection cap in force: `limits.max_connections`, or what the descriptors allow.

    Call it for the number; `follow(table)` after each reload (logs only when the verdict changes)."""

    def __init__(self, nofile: NoFile, table: RouteTable, *, metrics: ProxyMetrics | None = None) -> None:
        self.nofile = nofile
        self._metrics = metrics
        self._said: tuple[int, int] | None = None
        self.value = table.limits.max_connections
        if metrics is not None and nofile.soft is not None:
            metrics.open_files_limit.set(nofile.soft)
        self.follow(table)

    def __call__(self) -> int:
        return self.value

    def follow(self, table: RouteTable) -> None:
        wanted = table.limits.max_connections
        reserve = reserve_of(table)
        allowed = capacity(self.nofile.soft, reserve)
        self.value = wanted if allowed is None else min(wanted, allowed)
        if self._metrics is not None:
            self._metrics.connection_limit.set(self.value)
        verdict = (wanted, self.value)
        if verdict == self._said:
            return
        self._said = verdict
        if self.value < wanted:
            _log.error(
                "max_connections_exceeds_open_files",
                max_connections=wanted,
                effective_max_connections=self.value,
                open_files_limit=self.nofile.soft,
                open_files_hard_limit=self.nofile.hard,
                open_files_needed=needed(wanted, reserve),
                detail=(
                    f"limits.max_connections={wanted} needs {needed(wanted, reserve)} file descriptors "
                    f"({FDS_PER_CONNECTION} per connection + {reserve} reserved) but the open-file limit "
                    f"is {self.nofile.soft}: at most {self.value} client connections are accepted, beyond "
                    f"that 503 too_many_connections. Raise the limit (ulimit -n, systemd LimitNOFILE=, "
                    f"docker --ulimit nofile=) or lower limits.max_connections"
                ),
            )
        elif self.nofile.soft is not None:
            _log.info(
                "max_connections_fits_open_files",
                max_connections=wanted,
                open_files_limit=self.nofile.soft,
                open_files_needed=needed(wanted, reserve),
            )
