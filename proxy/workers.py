"""`strangler-proxy serve --workers N`: N pre-forked worker processes sharing the public port.

Model: the parent checks the config, reserves the public port, forks N workers and supervises them.
Each worker is a complete single-process proxy (proxy.server.serve) whose public socket is bound with
SO_REUSEPORT, so the kernel spreads new connections over the workers; nothing is shared between them
at run time. Each worker has its own admin listener on consecutive ports (admin_port + i; with
--admin-port 0 each gets an ephemeral one) exporting that worker's own metrics: scrape all N and sum.
Reloads: every worker watches routes.yaml itself; SIGHUP to the parent is forwarded to every worker;
POST /reload on one admin port reloads that worker only (the others follow through the file watcher).
SIGINT/SIGTERM to the parent are forwarded as SIGTERM; each worker drains and exits, then the parent
exits 0. A worker that dies on its own stops the others and the parent exits 1 (no respawn: the
process manager above us restarts the whole unit).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from typing import Any

import structlog

from proxy.config import load_config
from proxy.server import serve

_log = structlog.get_logger("proxy.workers")
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def admin_port_of(admin_port: int, index: int) -> int:
    return admin_port + index if admin_port else 0


def reserve_port(host: str, port: int) -> socket.socket:
    """A bound, non-listening SO_REUSEPORT socket: turns port 0 into one number all workers share,
    and keeps the port ours while they start. It never accepts (only listening sockets do)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def serve_workers(count: int, *, config_path: str, host: str, port: int, admin_host: str, admin_port: int,
                  admin_token: str | None, shadow_key: bytes | None = None,
                  reload_settle_s: float = 2.0) -> int:  # fmt: skip
    """Run `count` workers until SIGINT/SIGTERM; the exit code for the CLI. ConfigError before forking."""
    load_config(config_path)  # fail fast, once, before any worker starts
    reservation = reserve_port(host, port)
    shared_port = int(reservation.getsockname()[1])
    children: dict[int, int] = {}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _FORWARDED)  # no signal between fork and handlers
    try:
        for index in range(count):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child, measured by the integration test
                _child(index, dict(
                    config_path=config_path, host=host, port=shared_port, admin_host=admin_host,
                    admin_port=admin_port_of(admin_port, index), admin_token=admin_token, reuse_port=True,
                    shadow_key=shadow_key, reload_settle_s=reload_settle_s,
                ), previous)  # fmt: skip
            children[pid] = index
        _log.info("proxy_workers_started", workers=count, port=shared_port, pids=sorted(children))
        return _supervise(children, previous)
    finally:
        reservation.close()


def _child(index: int, kwargs: dict[str, Any], mask: set[int | signal.Signals]) -> None:
    code = 0
    try:
        for sig in _FORWARDED:
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        structlog.contextvars.bind_contextvars(worker=index)
        serve(**kwargs)
    except BaseException:  # a child must never return into the parent's code
        _log.exception("proxy_worker_failed", worker=index)
        code = 1
    finally:
        os._exit(code)


def _supervise(children: dict[int, int], mask: set[int | signal.Signals]) -> int:
    stopping = False
    failed = False

    def forward(signum: int, _: object) -> None:
        nonlocal stopping
        if signum != signal.SIGHUP:
            stopping = True
        _signal_all(children, signal.SIGHUP if signum == signal.SIGHUP else signal.SIGTERM)

    for sig in _FORWARDED:
        signal.signal(sig, forward)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    while children:
        pid, status = os.wait()
        index = children.pop(pid, None)
        if index is None:
            continue
        code = os.waitstatus_to_exitcode(status)
        if code != 0 or not stopping:
            failed = True
            _log.error("proxy_worker_exited", worker=index, pid=pid, code=code)
            if not stopping:
                stopping = True
                _signal_all(children, signal.SIGTERM)
    _log.info("proxy_workers_stopped", failed=failed)
    return 1 if failed else 0


def _signal_all(children: dict[int, int], sig: signal.Signals) -> None:
    for pid in list(children):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
