"""Run the proxy: the public and the admin listener in one process, on uvloop when installed.

SIGHUP reloads the configuration; SIGINT/SIGTERM stop gracefully (listeners close, in-flight requests
get `shutdown_timeout_s` to finish). Before binding, the open-file limit is raised where allowed and the
connection cap fitted to it (fdlimit.py). Logging is configured by the caller (proxy.__main__), not here.
"""

from __future__ import annotations

import asyncio
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

    def on_hup() -> None:
        task: asyncio.Task[object] = loop.create_task(app[STORE].reload("sighup"))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    await public_runner.setup()
    await admin_runner.setup()
    try:
        public_site = web.TCPSite(public_runner, host, port, reuse_port=reuse_port or None)
        admin_site = web.TCPSite(admin_runner, admin_host, admin_port)
        await public_site.start()
        await admin_site.start()
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
        await stop.wait()
        _log.info("proxy_stopping")
    finally:
        for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        unfollow()
        await admin_runner.cleanup()
        await public_runner.cleanup()
        _log.info("proxy_stopped")


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
        host, port = address[0], address[1]
        out.append(f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}")
    return out
