"""Run the proxy: the public and the admin listener in one process, on uvloop when installed.

SIGHUP reloads the configuration; SIGINT/SIGTERM stop gracefully (listeners close, in-flight requests
get `shutdown_timeout_s` to finish). Before binding, the open-file limit is raised where allowed and the
connection cap fitted to it (fdlimit.py). Logging is configured by the caller (proxy.__main__), not here.
As a worker of `serve --workers N` (proxy/workers.py), the public socket is bound with SO_REUSEPORT, the
admin app listens on the private unix socket `admin_socket` instead of a TCP port, and the worker stops
itself when its parent is gone (it would otherwise keep the port).
"""

from __future__ import annotations

import asyncio
import os
import signal

import structlog
from aiohttp import web

from proxy.admin.app import create_admin_app
from proxy.app import create_app
from proxy.config import load_config
from proxy.dataplane.fdlimit import ConnectionCap, NoFile, raise_nofile
from proxy.dataplane.frontdoor import FrontDoorRunner
from proxy.dataplane.keys import METRICS, STORE

__all__ = ["serve"]

_log = structlog.get_logger("proxy.server")


def serve(
    config_path: str,
    host: str,
    port: int,
    admin_host: str,
    admin_port: int,
    admin_token: str | None = None,
    *,
    shutdown_timeout_s: float = 30.0,
    access_log: bool = True,
    reuse_port: bool = False,  # SO_REUSEPORT on the public socket: set by proxy.workers (--workers N)
    shadow_key: bytes | None = None,  # signs the shadow marker (strangler_common/shadowmark.py)
    reload_settle_s: float = 2.0,  # an edited routes.yaml goes live once unchanged this long (settle.py)
    admin_socket: str | None = None,  # a worker's private admin socket, instead of admin_host:admin_port
) -> None:
    """Block until SIGINT/SIGTERM. Raises proxy.config.ConfigError when the file is invalid at start."""
    loaded = load_config(config_path)  # fail fast, before binding anything
    nofile = raise_nofile()  # before binding too: the connection cap is fitted to it
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is optional
        factory = None
    else:
        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(
            _serve(
                create_app(loaded, admin_token=admin_token, access_log=access_log, shadow_key=shadow_key,
                           watch_settle_s=reload_settle_s),
                nofile=nofile,
                host=host,
                port=port,
                admin_host=admin_host,
                admin_port=admin_port,
                shutdown_timeout_s=shutdown_timeout_s,
                reuse_port=reuse_port,
                admin_socket=admin_socket,
            )
        )


async def _serve(
    app: web.Application,
    *,
    nofile: NoFile,
    host: str,
    port: int,
    admin_host: str,
    admin_port: int,
    shutdown_timeout_s: float,
    reuse_port: bool = False,
    admin_socket: str | None = None,
) -> None:
    loop = asyncio.get_running_loop()
    admin = create_admin_app(app)
    store = app[STORE]
    # The connection cap in force: max_connections, or what the file descriptors allow (said at ERROR).
    cap = ConnectionCap(nofile, store.current.table, metrics=app[METRICS])
    unfollow = store.subscribe(lambda snapshot: cap.follow(snapshot.table))
    public_runner = _public_runner(app, cap, shutdown_timeout_s)
    admin_runner = web.AppRunner(admin, access_log=None, shutdown_timeout=5.0)
    stop = asyncio.Event()
    reloads: set[asyncio.Task[object]] = set()
    orphan_watch: asyncio.Task[None] | None = None

    def on_hup() -> None:
        task: asyncio.Task[object] = loop.create_task(app[STORE].reload("sighup"))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    await public_runner.setup()
    await admin_runner.setup()
    try:
        await web.TCPSite(public_runner, host, port, reuse_port=reuse_port or None).start()
        await _admin_site(admin_runner, admin_host, admin_port, admin_socket).start()
        loop.add_signal_handler(signal.SIGHUP, on_hup)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        _log.info(
            "proxy_listening",
            public=_addresses(public_runner),
            admin=_addresses(admin_runner),
            config=app[STORE].path,
            sha256=app[STORE].current.loaded.sha256,
        )
        if admin_socket:  # a worker
            orphan_watch = loop.create_task(_stop_when_orphaned(os.getppid(), stop))
        await stop.wait()
        _log.info("proxy_stopping")
    finally:
        if orphan_watch is not None:
            orphan_watch.cancel()
        for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        unfollow()
        await admin_runner.cleanup()
        await public_runner.cleanup()
        _log.info("proxy_stopped")


def _admin_site(runner: web.AppRunner, host: str, port: int, path: str | None) -> web.BaseSite:
    """A worker's admin app listens on its private unix socket; a single process's on host:port."""
    return web.UnixSite(runner, path) if path else web.TCPSite(runner, host, port)


async def _stop_when_orphaned(parent: int, stop: asyncio.Event, every_s: float = 1.0) -> None:
    """Sets `stop` once the process that started this worker is gone (the worker was handed to init)."""
    while os.getppid() == parent:  # noqa: ASYNC110 - no event tells a process that its parent died
        await asyncio.sleep(every_s)
    _log.error("proxy_parent_gone", parent=parent, detail="the supervising process died; this worker stops")
    stop.set()


def _public_runner(app: web.Application, cap: ConnectionCap, shutdown_timeout_s: float) -> FrontDoorRunner:
    """The limits block (parser bounds, head/body read timeout, connection cap) and JSON answers for
    what the HTTP parser refuses. keepalive_timeout: an idle kept-alive connection goes after 75 s
    (aiohttp's default is an hour), so idle clients cannot hold max_connections."""
    store = app[STORE]
    return FrontDoorRunner(
        app,
        limits=lambda: store.current.table.limits,
        max_connections=cap,
        metrics=app[METRICS],
        handler_cancellation=True,
        access_log=None,
        shutdown_timeout=shutdown_timeout_s,
        keepalive_timeout=75.0,
    )


def _addresses(runner: web.AppRunner) -> list[str]:
    out = []
    for address in runner.addresses:
        if isinstance(address, str):  # a unix socket
            out.append(address)
            continue
        host, port = address[0], address[1]
        out.append(f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}")
    return out
